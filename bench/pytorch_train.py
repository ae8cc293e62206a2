#!/usr/bin/env python3
"""The PyTorch twin of dmtl's default model and training step, for throughput
comparisons (bench/run.sh runs both side by side).

Same architecture (ResNet-style encoder with BatchNorm, two U-Net heads), same
batch, resolution, thread count, optimizer (AdamW) and augmentation (random
scale-crop + flip), same `full` method (cross-entropy + masked L1 on every
image). Data: the same Cityscapes-layout folder, decoded into memory first
(as dmtl does), then batches are built on the fly.
"""
import argparse
import glob
import json
import os
import random
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
from PIL import Image

MEAN = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
STD = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
# Cityscapes id -> 7 categories (void -> 255).
CATEGORY = [255] * 7 + [0] * 4 + [1] * 6 + [2] * 4 + [3] * 2 + [4] + [5] * 2 + [6] * 8
LUT = np.full(256, 255, dtype=np.uint8)
LUT[: len(CATEGORY)] = CATEGORY


class ConvBn(nn.Module):
    def __init__(self, cin, cout, k, stride):
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, k, stride, k // 2, bias=False)
        self.bn = nn.BatchNorm2d(cout)

    def forward(self, x):
        return self.bn(self.conv(x))


class BasicBlock(nn.Module):
    def __init__(self, cin, cout, stride):
        super().__init__()
        self.conv1 = ConvBn(cin, cout, 3, stride)
        self.conv2 = ConvBn(cout, cout, 3, 1)
        self.shortcut = ConvBn(cin, cout, 1, stride) if stride != 1 or cin != cout else None

    def forward(self, x):
        y = self.conv2(F.relu(self.conv1(x)))
        return F.relu(y + (self.shortcut(x) if self.shortcut is not None else x))


class Encoder(nn.Module):
    def __init__(self, width, blocks):
        super().__init__()
        self.channels = [width << i for i in range(len(blocks))]
        self.stem = ConvBn(3, width, 3, 2)
        stages, cin = [], width
        for i, n in enumerate(blocks):
            layers = []
            for b in range(n):
                layers.append(BasicBlock(cin, self.channels[i], 2 if i > 0 and b == 0 else 1))
                cin = self.channels[i]
            stages.append(nn.Sequential(*layers))
        self.stages = nn.ModuleList(stages)

    def forward(self, x):
        x = F.relu(self.stem(x))
        feats = []
        for s in self.stages:
            x = s(x)
            feats.append(x)
        return feats


class Decoder(nn.Module):
    def __init__(self, enc, ratio, out):
        super().__init__()
        width = lambda c: max(4, round(c * ratio))
        n = len(enc)
        deeper = width(enc[-1])
        fuse = [ConvBn(enc[-1], deeper, 3, 1)]
        for i in reversed(range(n - 1)):
            c = width(enc[i])
            fuse.append(ConvBn(deeper + enc[i], c, 3, 1))
            deeper = c
        self.fuse = nn.ModuleList(fuse)
        self.refine = ConvBn(deeper, deeper, 3, 1)
        self.predict = nn.Conv2d(deeper, out, 1)

    def forward(self, feats, size):
        x = F.relu(self.fuse[0](feats[-1]))
        for k, skip in enumerate(reversed(feats[:-1])):
            up = F.interpolate(x, size=skip.shape[2:], mode="bilinear", align_corners=False)
            x = F.relu(self.fuse[k + 1](torch.cat([up, skip], 1)))
        x = self.predict(F.relu(self.refine(x)))
        return F.interpolate(x, size=size, mode="bilinear", align_corners=False)


class MultiTaskNet(nn.Module):
    def __init__(self, width=16, blocks=(1, 1, 1, 1), ratio=1.0, classes=7):
        super().__init__()
        self.encoder = Encoder(width, blocks)
        self.seg_head = Decoder(self.encoder.channels, ratio, classes)
        self.depth_head = Decoder(self.encoder.channels, ratio, 1)

    def forward(self, x):
        feats = self.encoder(x)
        size = x.shape[2:]
        return self.seg_head(feats, size), self.depth_head(feats, size)


def load(root, split, h, w, limit):
    files = sorted(glob.glob(os.path.join(root, "leftImg8bit", split, "*", "*_leftImg8bit.png")))
    if limit:
        files = files[:limit]
    imgs, labels, disps = [], [], []
    for f in files:
        img = Image.open(f).convert("RGB")
        ow = img.size[0]
        imgs.append(np.asarray(img.resize((w, h), Image.BILINEAR)))
        lf = f.replace("leftImg8bit", "gtFine", 1).replace("_leftImg8bit.png", "_gtFine_labelIds.png")
        labels.append(np.asarray(Image.fromarray(LUT[np.asarray(Image.open(lf))]).resize((w, h), Image.NEAREST)))
        df = f.replace("leftImg8bit", "disparity", 1).replace("_leftImg8bit.png", "_disparity.png")
        p = np.asarray(Image.open(df)).astype(np.float32)
        d = np.where(p > 0, (p - 1) / 256.0, 0).astype(np.float32)
        disps.append(np.asarray(Image.fromarray(d).resize((w, h), Image.NEAREST)) * (w / ow))
    return (
        torch.from_numpy(np.stack(imgs)).permute(0, 3, 1, 2).contiguous(),
        torch.from_numpy(np.stack(labels)).long(),
        torch.from_numpy(np.stack(disps)).unsqueeze(1),
    )


def batch(data, idx, h, w, max_scale):
    imgs, labels, disps = data
    xs, ys, ds = [], [], []
    for i in idx:
        x, y, d = imgs[i : i + 1].float(), labels[i : i + 1], disps[i : i + 1]
        s = random.uniform(1.0, max_scale)
        if s > 1.0:
            ch, cw = round(h / s), round(w / s)
            y0, x0 = random.randint(0, h - ch), random.randint(0, w - cw)
            x = F.interpolate(x[:, :, y0 : y0 + ch, x0 : x0 + cw], size=(h, w), mode="bilinear", align_corners=False)
            y = F.interpolate(y[:, None, y0 : y0 + ch, x0 : x0 + cw].float(), size=(h, w), mode="nearest")[:, 0].long()
            d = F.interpolate(d[:, :, y0 : y0 + ch, x0 : x0 + cw], size=(h, w), mode="nearest") * (w / cw)
        if random.random() < 0.5:
            x, y, d = x.flip(3), y.flip(2), d.flip(3)
        xs.append(x), ys.append(y), ds.append(d)
    x = (torch.cat(xs) / 255.0 - MEAN) / STD
    return x, torch.cat(ys), torch.cat(ds)


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--data-root", required=True)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--height", type=int, default=64)
    ap.add_argument("--width", type=int, default=128)
    ap.add_argument("--model-width", type=int, default=16)
    ap.add_argument("--max-scale", type=float, default=1.5)
    ap.add_argument("--limit", type=int, default=0)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    random.seed(0)
    t0 = time.time()
    data = load(args.data_root, "train", args.height, args.width, args.limit)
    load_s = time.time() - t0
    model = MultiTaskNet(args.model_width)
    opt = torch.optim.AdamW(model.parameters(), lr=2e-3, weight_decay=1e-4)
    n = data[0].shape[0]
    start = time.time()
    for step in range(args.steps):
        idx = random.sample(range(n), args.batch)
        x, y, d = batch(data, idx, args.height, args.width, args.max_scale)
        seg, depth = model(x)
        valid = (y != 255).sum().clamp_min(1)
        l_seg = F.cross_entropy(seg, y, ignore_index=255, reduction="sum") / valid
        mask = (d > 0).float()
        l_depth = ((depth - d).abs() * mask).sum() / mask.sum().clamp_min(1)
        opt.zero_grad(set_to_none=True)
        (l_seg + l_depth).backward()
        opt.step()
    wall = time.time() - start
    print(json.dumps({
        "impl": "pytorch", "torch": torch.__version__, "steps": args.steps, "batch": args.batch,
        "threads": args.threads, "params": sum(p.numel() for p in model.parameters()),
        "load_s": round(load_s, 2), "train_s": round(wall, 2),
        "images_per_s": round(args.steps * args.batch / wall, 1),
    }))


if __name__ == "__main__":
    main()
