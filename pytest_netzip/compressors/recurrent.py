"""Recurrent layers (nn.LSTM, nn.GRU, nn.RNN) rewritten with nn.Linear gate projections, for quantisers
that only quantise nn.Linear (torchao's): the same math as torch's fused kernels, checked against them."""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any, cast

import torch
import torch.nn.functional as F
from torch import nn
from typing_extensions import override

from pytest_netzip.compressors.base import run_observed
from pytest_netzip.errors import CompressorUnsupported

#: Gates per mode, in the order of torch's stacked weights.
_GATES = {"LSTM": 4, "GRU": 3, "RNN_TANH": 1, "RNN_RELU": 1}

#: How far the decomposed layer's outputs may lie from torch's (float32) before it is refused.
TOLERANCE = 1e-5


class _Direction(nn.Module):
    """One layer and direction: ``ih`` projects the inputs, ``hh`` the hidden state, ``proj`` an LSTM's output."""

    def __init__(self, source: nn.RNNBase, suffix: str) -> None:
        super().__init__()
        weight_ih, weight_hh = getattr(source, f"weight_ih_{suffix}"), getattr(source, f"weight_hh_{suffix}")
        self.ih = nn.Linear(weight_ih.shape[1], weight_ih.shape[0], bias=source.bias)
        self.hh = nn.Linear(weight_hh.shape[1], weight_hh.shape[0], bias=source.bias)
        self.proj: nn.Linear | None = None
        with torch.no_grad():
            self.ih.weight.copy_(weight_ih)
            self.hh.weight.copy_(weight_hh)
            if source.bias:
                self.ih.bias.copy_(getattr(source, f"bias_ih_{suffix}"))
                self.hh.bias.copy_(getattr(source, f"bias_hh_{suffix}"))
            if getattr(source, "proj_size", 0) > 0:
                weight_hr = getattr(source, f"weight_hr_{suffix}")
                self.proj = nn.Linear(weight_hr.shape[1], weight_hr.shape[0], bias=False)
                self.proj.weight.copy_(weight_hr)

    def run(self, mode: str, inputs: torch.Tensor, h: torch.Tensor, c: torch.Tensor | None,
            reverse: bool) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
        """Outputs (T, B, H) and the last states of this direction over time-major ``inputs`` (T, B, I)."""
        projected = self.ih(inputs)  # every step's input projection at once
        steps = range(inputs.shape[0] - 1, -1, -1) if reverse else range(inputs.shape[0])
        outputs: list[torch.Tensor] = [h] * inputs.shape[0]
        for t in steps:
            gates_x, gates_h = projected[t], self.hh(h)
            if mode == "LSTM":
                assert c is not None  # an LSTM always carries a cell state
                i, f, g, o = (gates_x + gates_h).chunk(4, dim=-1)
                c = torch.sigmoid(f) * c + torch.sigmoid(i) * torch.tanh(g)
                h = torch.sigmoid(o) * torch.tanh(c)
                if self.proj is not None:
                    h = self.proj(h)
            elif mode == "GRU":
                x_r, x_z, x_n = gates_x.chunk(3, dim=-1)
                h_r, h_z, h_n = gates_h.chunk(3, dim=-1)
                r, z = torch.sigmoid(x_r + h_r), torch.sigmoid(x_z + h_z)
                n = torch.tanh(x_n + r * h_n)
                h = (1 - z) * n + z * h
            else:
                h = torch.tanh(gates_x + gates_h) if mode == "RNN_TANH" else torch.relu(gates_x + gates_h)
            outputs[t] = h
        return torch.stack(outputs), h, c


class LinearRecurrent(nn.Module):
    """``source`` (an nn.LSTM, nn.GRU or nn.RNN) computed step by step from nn.Linear gate projections.

    Takes and returns what ``source`` does (``batch_first``, unbatched inputs, an initial state,
    several layers, both directions, an LSTM's ``proj_size``; dropout between layers while training),
    except a PackedSequence. The projections of each layer and direction are ``layers[k][d].ih``
    (input to hidden), ``.hh`` (hidden to hidden) and ``.proj`` (an LSTM's projection).
    """

    def __init__(self, source: nn.RNNBase) -> None:
        super().__init__()
        self.mode = source.mode
        self.kind = type(source).__name__
        self.hidden_size, self.num_layers, self.dropout = source.hidden_size, source.num_layers, source.dropout
        self.batch_first, self.directions = source.batch_first, 2 if source.bidirectional else 1
        self.output_size = getattr(source, "proj_size", 0) or source.hidden_size
        self.layers = nn.ModuleList(
            nn.ModuleList(_Direction(source, f"l{layer}{'_reverse' if direction else ''}")
                          for direction in range(self.directions))
            for layer in range(self.num_layers)
        )

    @override
    def forward(self, inputs: Any, hx: Any = None) -> tuple[torch.Tensor, Any]:
        if isinstance(inputs, nn.utils.rnn.PackedSequence):
            raise TypeError(f"the decomposed {self.kind} takes padded tensors, not a PackedSequence")
        unbatched = inputs.dim() == 2
        if unbatched:
            inputs = inputs.unsqueeze(1)
            hx = None if hx is None else tuple(state.unsqueeze(1) for state in _states(hx))
        elif self.batch_first:
            inputs = inputs.transpose(0, 1)
        states = self._initial(inputs, hx)
        last_h, last_c = [], []
        x = inputs
        for layer_index, layer in enumerate(self.layers):
            if layer_index and self.dropout and self.training:
                x = F.dropout(x, self.dropout, training=True)
            outputs = []
            for direction, cell in enumerate(cast("list[_Direction]", layer)):
                index = layer_index * self.directions + direction
                c0 = states[1][index] if self.mode == "LSTM" else None
                out, h, c = cell.run(self.mode, x, states[0][index], c0, reverse=bool(direction))
                outputs.append(out)
                last_h.append(h)
                if c is not None:
                    last_c.append(c)
            x = torch.cat(outputs, dim=-1) if len(outputs) > 1 else outputs[0]
        h_n = torch.stack(last_h)
        final: Any = (h_n, torch.stack(last_c)) if self.mode == "LSTM" else h_n
        if unbatched:
            return x.squeeze(1), tuple(s.squeeze(1) for s in final) if self.mode == "LSTM" else final.squeeze(1)
        return (x.transpose(0, 1) if self.batch_first else x), final

    def _initial(self, inputs: torch.Tensor, hx: Any) -> tuple[torch.Tensor, ...]:
        """The initial hidden (and cell) states, (layers x directions, B, size): ``hx`` or zeros."""
        if hx is not None:
            return _states(hx)
        count, batch = self.num_layers * self.directions, inputs.shape[1]
        h0 = inputs.new_zeros(count, batch, self.output_size)
        return (h0, inputs.new_zeros(count, batch, self.hidden_size)) if self.mode == "LSTM" else (h0,)


def _states(hx: Any) -> tuple[torch.Tensor, ...]:
    return tuple(hx) if isinstance(hx, (tuple, list)) else (hx,)


def _max_difference(first: Any, second: Any) -> float:
    """The largest absolute difference between two outputs of a recurrent layer (tensors, nested in tuples)."""
    if isinstance(first, torch.Tensor):
        return float((first - second).detach().abs().max()) if first.numel() else 0.0
    return max(_max_difference(a, b) for a, b in zip(first, second))


def _check(name: str, source: nn.RNNBase, decomposed: LinearRecurrent, calls: list[tuple[Any, ...]],
           compressor: str) -> None:
    """Refuse ``decomposed`` unless it gives ``source``'s outputs within TOLERANCE on every recorded call."""
    generator = torch.Generator().manual_seed(0)
    shape = (2, 3, source.input_size) if source.batch_first else (3, 2, source.input_size)
    weight = next(source.parameters())
    probe = (torch.randn(shape, generator=generator).to(weight.device, weight.dtype),)
    with torch.no_grad():
        for args in [probe, *calls]:
            if isinstance(args[0], nn.utils.rnn.PackedSequence):
                raise CompressorUnsupported(
                    f"{compressor} cannot decompose {source.mode.replace('_', ' ')} layer '{name}' into Linear "
                    "layers: the model gives it a PackedSequence"
                )
            with warnings.catch_warnings():  # torch's own notice that projections bypass oneDNN
                warnings.filterwarnings("ignore", "LSTM with projections is not supported", UserWarning)
                expected = source(*args)
            difference = _max_difference(expected, decomposed(*args))
            if difference > TOLERANCE:
                raise CompressorUnsupported(
                    f"{compressor}: the Linear decomposition of layer '{name}' ({type(source).__name__}) differs "
                    f"from it by {difference:.2e} (more than {TOLERANCE:g}), so it is not quantised"
                )


def record_calls(model: nn.Module, layers: Mapping[str, nn.Module],
                 example_input: Any) -> dict[str, list[tuple[Any, ...]]]:
    """The positional arguments of every call of each of ``layers`` (by name) while ``model`` runs on
    ``example_input``; no calls without one. The hooks are removed whatever happens."""
    calls: dict[str, list[tuple[Any, ...]]] = {name: [] for name in layers}
    if example_input is None:
        return calls
    names = {id(module): name for name, module in layers.items()}
    run_observed(model, example_input, layers.values(), lambda module, args: calls[names[id(module)]].append(args))
    return calls


def decompose_recurrent(model: nn.Module, example_input: Any, compressor: str) -> tuple[nn.Module, int]:
    """``model`` with every nn.LSTM, nn.GRU and nn.RNN replaced by its :class:`LinearRecurrent`, and their number.

    Each replacement is first checked against the original (in eval mode) on a random input and,
    with an ``example_input``, on what the model gives the layer on it.
    """
    recurrent = {name: module for name, module in model.named_modules()
                 if isinstance(module, nn.RNNBase) and module.mode in _GATES}
    if not recurrent:
        return model, 0
    calls = record_calls(model, recurrent, example_input)
    for name, module in recurrent.items():
        training = module.training
        decomposed = LinearRecurrent(module).to(next(module.parameters()).device)
        _check(name, module.eval(), decomposed.eval(), calls[name], compressor)
        if not name:
            return decomposed.train(training), 1
        parent_name, _, child = name.rpartition(".")
        setattr(model.get_submodule(parent_name), child, decomposed.train(training))
    return model, len(recurrent)
