"""The PyTorch twin of a tinyfit model, for the speed comparison (benchmarks/bench_step.py):
built from the model's own ``spec()``, layer by layer, with the same shapes, pooling rule,
dropout and per-layer max-norm projection after each update (conv filters and the
classifier's columns alike), and the optimiser the model is trained with. Layout NCHW.
PyTorch is imported only here, and only when a comparison is asked for."""
from __future__ import annotations


def torch_twin(model, optimizer, batch, device):
    """(net, step, forward): callables timing one training step / one forward pass of the
    twin of ``model`` (a tinyfit Sequential) on a random batch. optimizer: 'rmsprop' (the
    student's settings) or 'sgd' (the teacher's)."""
    import torch
    import torch.nn as nn
    torch.manual_seed(0)
    dev = "cuda" if device == "cuda" else "cpu"

    class Maxout(nn.Module):
        def __init__(self, in_channels, channels, pieces, kernel, pad, pool, pool_stride, ceil_mode, **_):
            super().__init__()
            self.conv = nn.Conv2d(in_channels, channels * pieces, kernel, padding=pad)
            self.ch, self.pieces = channels, pieces
            self.pool = nn.MaxPool2d(pool, pool_stride or pool, ceil_mode=ceil_mode) if pool else nn.Identity()

        def forward(self, x):
            y = self.conv(x)
            n, _, h, w = y.shape
            return self.pool(y.view(n, self.ch, self.pieces, h, w).amax(2))

    layers, norms = [], []  # norms: (weight, max-norm, axes the norm is taken over)
    for _, kind, cfg in model.spec()["layers"]:
        if kind == "MaxoutConv2d":
            layer = Maxout(**cfg)
            if cfg["max_norm"]:
                norms.append((layer.conv.weight, cfg["max_norm"], (1, 2, 3)))
        elif kind == "Linear":
            layer = nn.Linear(cfg["in_features"], cfg["out_features"], bias=cfg["bias"])
            if cfg["max_norm"]:
                norms.append((layer.weight, cfg["max_norm"], (1,)))  # (out, in): one row per output
        elif kind == "Dropout":
            layer = nn.Dropout(cfg["p"])
        elif kind == "Flatten":
            layer = nn.Flatten()
        else:
            raise ValueError(f"no PyTorch twin for layer type {kind!r}")
        layers.append(layer)
    net = nn.Sequential(*layers).to(dev)
    if optimizer == "rmsprop":
        opt = torch.optim.RMSprop(net.parameters(), lr=0.0005, alpha=0.9, eps=1e-5)
    else:
        opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.5)
    h, w, c = model.input_shape
    x = torch.rand(batch, c, h, w, device=dev)
    y = torch.randint(0, 10, (batch,), device=dev)
    loss = nn.CrossEntropyLoss()

    def sync():
        if dev == "cuda":
            torch.cuda.synchronize()

    def step():
        net.train()
        opt.zero_grad()
        loss(net(x), y).backward()
        opt.step()
        with torch.no_grad():  # the max-norm projection tinyfit's optimiser applies after each update
            for p, limit, axes in norms:
                n = p.pow(2).sum(dim=axes, keepdim=True).sqrt()
                p.mul_(n.clamp(max=limit) / n.clamp(min=1e-12))
        sync()

    def forward():
        net.eval()
        with torch.no_grad():
            net(x)
        sync()
    return net, step, forward
