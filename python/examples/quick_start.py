"""steep from PyTorch in one screen: a small MLP trained with steep.torch.AdamW and with
torch.optim.AdamW from the same start, then the same model with Muon on its hidden matrix.

    PYTHONPATH=build/python /usr/bin/python3 python/examples/quick_start.py
"""
import copy

import torch

import steep.torch

torch.manual_seed(0)
x = torch.randn(512, 20)
y = (x[:, :5].sum(1, keepdim=True) > 0).float()
model = torch.nn.Sequential(torch.nn.Linear(20, 64), torch.nn.ReLU(), torch.nn.Linear(64, 1))


def train(model, opt, steps=200):
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=steps)
    for _ in range(steps):
        opt.zero_grad()
        loss = torch.nn.functional.binary_cross_entropy_with_logits(model(x), y)
        loss.backward()
        opt.step()
        sched.step()
    return float(loss)


ours, theirs, routed = copy.deepcopy(model), copy.deepcopy(model), copy.deepcopy(model)
loss_steep = train(ours, steep.torch.AdamW(ours.named_parameters(), lr=1e-2, weight_decay=0.01))
loss_torch = train(theirs, torch.optim.AdamW(theirs.parameters(), lr=1e-2, weight_decay=0.01))
gap = max(float((a - b).abs().max()) for a, b in zip(ours.parameters(), theirs.parameters()))
print(f"AdamW, 200 steps: loss {loss_steep:.6f} (steep.torch) vs {loss_torch:.6f} (torch.optim); "
      f"largest parameter difference {gap:.1e}")

# Muon on the hidden matrix, AdamW on biases and the output layer ('2.*' by name).
opt = steep.torch.MuonAdamW(routed.named_parameters(), lr=0.02, adamw_lr=1e-2, adamw_names=["2.*"])
loss_routed = train(routed, opt)
print(f"Muon + AdamW, 200 steps: loss {loss_routed:.6f}; routes {opt.routes()} (0: Muon, 1: AdamW)")
# Bitwise, step by step (python/README.md, "Parity"); the check allows for a torch built with
# other kernels than Debian's (another fused multiply-add), whose last bits 200 steps amplify.
assert abs(loss_steep - loss_torch) < 1e-4 * loss_torch + 1e-7, "steep.torch.AdamW left torch's trajectory"
