"""The inference-only fast paths (no-grad attention, in-place GELU/GRN) match the autograd path."""

import torch

from hyperfuse.methods.mossfuse import MossFuseNet, fusion_path


def _net() -> MossFuseNet:
    torch.manual_seed(0)
    net = MossFuseNet(31, 3, 8, geometry="mossfuse").eval()
    with torch.no_grad():  # make GRN, layer scales and BN statistics non-trivial
        for name, p in net.named_parameters():
            if name.endswith(("grn.gamma", "grn.beta", ".gamma", "temperature")):
                p.copy_(0.5 * torch.rand_like(p) + 0.25)
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_(0, 0.1)
                m.running_var.uniform_(0.5, 1.5)
    return net


def test_fusion_path_matches_autograd_path() -> None:
    net = _net()
    torch.manual_seed(1)
    x, Y = torch.rand(2, 31, 8, 8), torch.rand(2, 3, 64, 64)
    ref = net(x, Y, return_aux=False).fused.detach()  # grad-enabled reference implementation
    assert ref.abs().max() > 0.1
    for cl in (True, False):
        out = fusion_path(_net(), x, Y, channels_last=cl)
        assert (out - ref).abs().max().item() <= 1e-5
    x0, Y0 = x.clone(), Y.clone()
    fusion_path(net, x, Y)
    assert torch.equal(x, x0) and torch.equal(Y, Y0)  # in-place ops never touch the inputs
