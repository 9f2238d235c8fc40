using TorchSharp;
using static TorchSharp.torch;
var x = torch.ones(2, 3);
Console.WriteLine((x * 2).sum().item<float>());
