"""The PyTorch reference for bench/: LeNet-5 on Fashion-MNIST with the same data path, batch, optimiser and
threads as the C# bare loop. Prints one line: images/s over the timed steps (after a warm-up). With --profile (the peer
of bench/Profile.cs), one JSON object instead: each phase's median microseconds per step, and images_per_second.
With --model vgg, the CIFAR-shaped peer of bench/Cifar.cs: the small VGG preset on 3x32x32 images made from Fashion-MNIST
(no CIFAR-10 here): each 28x28 image padded with 2 zero pixels on each side, its grey channel repeated 3 times."""
import argparse, gzip, json, statistics, time
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

p = argparse.ArgumentParser()
p.add_argument("--steps", type=int, default=300)
p.add_argument("--batch", type=int, default=64)
p.add_argument("--threads", type=int, default=2)
p.add_argument("--data", default="/usr/share/datasets/fashion-mnist")
p.add_argument("--profile", action="store_true")
p.add_argument("--model", choices=["lenet", "vgg"], default="lenet")
p.add_argument("--channels-last", action="store_true")  # weights and each batch in NHWC memory order
a = p.parse_args()
torch.set_num_threads(a.threads)
torch.manual_seed(1)

with gzip.open(f"{a.data}/train-images-idx3-ubyte.gz") as f:
    images = torch.from_numpy(np.frombuffer(f.read(), np.uint8, offset=16).reshape(-1, 1, 28, 28).copy())
with gzip.open(f"{a.data}/train-labels-idx1-ubyte.gz") as f:
    labels = torch.from_numpy(np.frombuffer(f.read(), np.uint8, offset=8).astype(np.int64))
n = (a.steps + 20) * a.batch
images, labels = images[:n], labels[:n]
if a.model == "vgg":
    images = F.pad(images, (2, 2, 2, 2)).repeat(1, 3, 1, 1).contiguous()
    pixels = images.float().div(255)
    mean, std = pixels.mean((0, 2, 3)), pixels.std((0, 2, 3), unbiased=False)  # per channel, as the Trainer
    scale, shift = (1 / (255 * std)).view(1, 3, 1, 1), (-mean / std).view(1, 3, 1, 1)
    del pixels
else:
    mean, std = images.float().div(255).mean().item(), images.float().div(255).std(unbiased=False).item()
    scale, shift = 1 / (255 * std), -mean / std


def vgg_pair(inputs, filters):
    # ModelPresets.SmallVgg: [conv3x3 "same", no bias -> BatchNorm2d -> ReLU] x 2
    return [nn.Conv2d(inputs, filters, 3, padding=1, bias=False), nn.BatchNorm2d(filters), nn.ReLU(),
            nn.Conv2d(filters, filters, 3, padding=1, bias=False), nn.BatchNorm2d(filters), nn.ReLU()]


if a.model == "vgg":
    model = nn.Sequential(
        *vgg_pair(3, 32), nn.MaxPool2d(2), *vgg_pair(32, 64), nn.MaxPool2d(2), nn.Flatten(),
        nn.Dropout(0.5), nn.Linear(4096, 256), nn.ReLU(), nn.Dropout(0.5), nn.Linear(256, 10))
else:
    model = nn.Sequential(
        nn.Conv2d(1, 6, 5, padding=2), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(6, 16, 5), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(),
        nn.Linear(400, 120), nn.ReLU(), nn.Linear(120, 84), nn.ReLU(), nn.Linear(84, 10))
model.train()
if a.channels_last:
    model = model.to(memory_format=torch.channels_last)
opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
order = torch.randperm(n)

phases = ["batch", "zero_grad", "forward", "loss", "backward", "optimizer", "read-back"]
times = {k: [] for k in phases}


def step(i, record=False):
    t0 = time.perf_counter()
    idx = order[i * a.batch:(i + 1) * a.batch]
    x = images.index_select(0, idx).float().mul_(scale).add_(shift)
    if a.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    y = labels.index_select(0, idx)
    t1 = time.perf_counter()
    opt.zero_grad()
    t2 = time.perf_counter()
    logits = model(x)
    t3 = time.perf_counter()
    loss = F.cross_entropy(logits, y)
    t4 = time.perf_counter()
    loss.backward()
    t5 = time.perf_counter()
    opt.step()
    t6 = time.perf_counter()
    loss.item()
    t7 = time.perf_counter()
    if record:
        for k, s, e in zip(phases, [t0, t1, t2, t3, t4, t5, t6], [t1, t2, t3, t4, t5, t6, t7]):
            times[k].append((e - s) * 1e6)


for i in range(20):
    step(i)
t = time.perf_counter()
for i in range(20, 20 + a.steps):
    step(i, a.profile)
rate = a.steps * a.batch / (time.perf_counter() - t)
if a.profile:
    print(json.dumps({**{k: statistics.median(v) for k, v in times.items()}, "images_per_second": rate}))
else:
    print(f"{rate:.1f}")
