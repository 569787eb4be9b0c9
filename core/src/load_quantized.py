# Load a network downloaded from Quantization Playground, rebuild its weights from the integer
# codes, and measure it on the digits in the file.   pip install torch safetensors
# Usage: python load_quantized.py mnistnet-bits-4-scheme-sym.safetensors
import sys

import torch
import torch.nn as nn
import torch.nn.functional as F
from safetensors import safe_open
from safetensors.torch import load_file


class MNISTNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 3, padding=1)
        self.conv2 = nn.Conv2d(32, 64, 3, padding=1)
        self.fc1 = nn.Linear(64 * 7 * 7, 128)
        self.fc2 = nn.Linear(128, 10)

    def forward(self, x):
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2)
        x = F.relu(self.fc1(x.flatten(1)))
        return self.fc2(x)


def dequantize(q, scale, zero_point, block):
    # w = (q - zero_point) * scale, each block of `block` weights along a row with its own pair.
    rows = q.reshape(scale.shape[0], -1)
    index = torch.arange(rows.shape[1]) // block
    w = (rows.float() - zero_point[:, index].float()) * scale[:, index]
    return w.reshape(q.shape)


path = sys.argv[1]
tensors = load_file(path)
with safe_open(path, "pt") as f:
    meta = f.metadata()
print("recipe:", meta["recipe"])

model = MNISTNet()
state = {k: tensors[k] for k in model.state_dict()}
for layer in ["conv1", "conv2", "fc1", "fc2"]:
    if f"{layer}.weight_int" in tensors:
        w = dequantize(
            tensors[f"{layer}.weight_int"],
            tensors[f"{layer}.weight_scale"],
            tensors[f"{layer}.weight_zero_point"],
            int(meta[f"{layer}.block"]),
        )
        # The codes give back exactly the fake-quantized weight the file also holds.
        assert torch.equal(w, tensors[f"{layer}.weight"]), layer
        state[f"{layer}.weight"] = w
        print(f"{layer}: int codes in [{meta[f'{layer}.qmin']}, {meta[f'{layer}.qmax']}], rebuilt exactly")
    else:
        print(f"{layer}: {meta[f'{layer}.format']} (no integer codes), weight as stored")
model.load_state_dict(state)

images = tensors["test.images"].float().div(255).unsqueeze(1)
labels = tensors["test.labels"].long()
with torch.no_grad():
    correct = (model(images).argmax(1) == labels).sum().item()
print(f"accuracy: {correct}/{len(labels)} = {100 * correct / len(labels):.2f}%")
