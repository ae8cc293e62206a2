#!/usr/bin/env python3
"""The bare training step of bench/pytorch_train.py's model on a fixed random
batch (no data loading), for comparison with
`cargo run --release --example step_bench`.

    .venv/bin/python bench/pytorch_step.py [steps] [threads]
"""
import json
import os
import sys
import time

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from pytorch_train import MultiTaskNet  # noqa: E402


def main():
    steps = int(sys.argv[1]) if len(sys.argv) > 1 else 50
    threads = int(sys.argv[2]) if len(sys.argv) > 2 else 2
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    model = MultiTaskNet()
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-4)
    x = torch.randn(16, 3, 64, 128)
    y = torch.randint(0, 7, (16, 64, 128))
    d = torch.rand(16, 1, 64, 128) * 10
    t_update = t_apply = 0.0
    for i in range(steps + 5):
        t0 = time.time()
        seg, depth = model(x)
        mask = (d > 0).float()
        loss = F.cross_entropy(seg, y, ignore_index=255) + ((depth - d).abs() * mask).sum() / mask.sum()
        opt.zero_grad(set_to_none=True)
        loss.backward()
        t1 = time.time()
        opt.step()
        t2 = time.time()
        if i >= 5:
            t_update += t1 - t0
            t_apply += t2 - t1
    print(json.dumps({
        "impl": "pytorch-step", "update_ms": round(1e3 * t_update / steps, 1),
        "apply_ms": round(1e3 * t_apply / steps, 1),
        "images_per_s": round(16 * steps / (t_update + t_apply), 1),
    }))


if __name__ == "__main__":
    main()
