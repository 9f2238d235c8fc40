"""Loads a TrainingService safetensors export into PyTorch: builds the network its metadata's spec describes (layers,
inputs, add and concat) with the same layer names, loads the weights with load_state_dict(strict=True), and prints the
class probabilities of raw images normalised as in training. Needs only torch and numpy (no safetensors package).

    python3 bench/pytorch_from_safetensors.py job.safetensors [pixels.json]

pixels.json: a JSON array of images, each C×H×W values 0–255 (the body of POST /jobs/{id}/predict's "images")."""
import json, struct, sys
import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

DTYPES = {"F32": np.float32, "F64": np.float64, "I64": np.int64}


def read_safetensors(path):
    with open(path, "rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(length))
        data = f.read()
    metadata = header.pop("__metadata__", {})
    tensors = {}
    for name, info in header.items():
        start, end = info["data_offsets"]
        array = np.frombuffer(data[start:end], dtype=DTYPES[info["dtype"]]).reshape(info["shape"])
        tensors[name] = torch.from_numpy(array.copy())
    return tensors, metadata


def pair(v):
    return (v, v) if isinstance(v, int) else tuple(v)


class SpecNet(nn.Module):
    """The spec's graph: one child per layer under its name; add and concat merge the layers they name."""

    def __init__(self, spec):
        super().__init__()
        self.plan = []
        channels = spec["input"]["channels"]
        shapes = {"input": (channels,)}
        counters, names = {}, []
        prefixes = {"conv2d": "conv", "maxpool2d": "maxpool", "avgpool2d": "avgpool", "batchnorm2d": "batchnorm"}
        given = {l["name"] for l in spec["layers"] if "name" in l}
        for i, layer in enumerate(spec["layers"]):
            kind = layer["kind"]
            name = layer.get("name")
            if name is None:  # the service's automatic names: the kind's prefix and the next free number
                prefix = prefixes.get(kind, kind)
                n = counters.get(prefix, 0)
                while True:
                    n += 1
                    if f"{prefix}{n}" not in given:
                        break
                counters[prefix] = n
                name = f"{prefix}{n}"
                given.add(name)
            inputs = layer.get("inputs") or [names[-1] if names else "input"]
            if isinstance(inputs, str):
                inputs = [inputs]
            c = shapes[inputs[0]][0]
            module, out = None, c
            if kind == "conv2d":
                pad = layer.get("padding", 0)
                module = nn.Conv2d(c, layer["filters"], pair(layer["kernel"]), stride=pair(layer.get("stride", 1)),
                                   padding="same" if pad == "same" else pair(pad), dilation=pair(layer.get("dilation", 1)),
                                   bias=layer.get("bias", True))
                out = layer["filters"]
            elif kind in ("maxpool2d", "avgpool2d"):
                k = pair(layer["kernel"])
                args = (k, pair(layer.get("stride", layer["kernel"])), pair(layer.get("padding", 0)))
                module = nn.MaxPool2d(*args) if kind == "maxpool2d" else nn.AvgPool2d(*args)
            elif kind == "relu":
                module = nn.ReLU()
            elif kind == "leakyrelu":
                module = nn.LeakyReLU(layer.get("slope", 0.01))
            elif kind == "sigmoid":
                module = nn.Sigmoid()
            elif kind == "tanh":
                module = nn.Tanh()
            elif kind == "batchnorm2d":
                module = nn.BatchNorm2d(c, eps=layer.get("eps", 1e-5), momentum=layer.get("momentum", 0.1))
            elif kind == "dropout":
                module = nn.Dropout(layer.get("p", 0.5))
            elif kind == "flatten":
                module = nn.Flatten()
                out = None  # features: known after a forward pass; linear layers read them from their weights
            elif kind == "linear":
                module = nn.LazyLinear(layer["units"], bias=layer.get("bias", True))
                out = layer["units"]
            elif kind == "globalavgpool":
                pass
            elif kind == "add":
                pass
            elif kind == "concat":
                out = sum(shapes[n][0] or 0 for n in inputs)
            else:
                raise ValueError(f"unknown kind {kind}")
            if module is not None:
                self.add_module(name, module)
            self.plan.append((name, kind, inputs))
            shapes[name] = (out,)
            names.append(name)

    def forward(self, x):
        outputs = {"input": x}
        for name, kind, inputs in self.plan:
            xs = [outputs[n] for n in inputs]
            if kind == "add":
                y = xs[0]
                for other in xs[1:]:
                    y = y + other
            elif kind == "concat":
                y = torch.cat(xs, 1)
            elif kind == "globalavgpool":
                y = xs[0].mean((2, 3))
            else:
                y = getattr(self, name)(xs[0])
            outputs[name] = y
        return y


def main():
    tensors, metadata = read_safetensors(sys.argv[1])
    spec = json.loads(metadata["spec"])
    net = SpecNet(spec).eval()
    shape = (1, spec["input"]["channels"], spec["input"]["height"], spec["input"]["width"])
    with torch.no_grad():
        net(torch.zeros(shape))  # materialises the lazy linear layers
    net.load_state_dict(tensors, strict=True)
    mean = torch.tensor(json.loads(metadata["input_mean"])).view(1, -1, 1, 1)
    std = torch.tensor(json.loads(metadata["input_std"])).view(1, -1, 1, 1)
    if len(sys.argv) > 2:
        with open(sys.argv[2]) as f:
            pixels = torch.tensor(json.load(f), dtype=torch.float32).view(-1, *shape[1:])
    else:
        pixels = torch.zeros(shape)
    with torch.no_grad():
        probabilities = F.softmax(net((pixels / 255 - mean) / std), 1)
    print(json.dumps(probabilities.tolist()))


if __name__ == "__main__":
    main()
