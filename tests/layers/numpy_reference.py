"""NumPy references of the cells, written from the papers' equations (float64, no Keras).

Each `run_*` takes inputs `[B, T, D]`, a dict of the cell's weights by name and the
cell's config, and returns `(outputs [B, T, U], final_states list)`. Zoneout rates in the
config are applied as their inference-time expectation.
"""

from __future__ import annotations

import numpy as np


def sigmoid(x):
    return 1.0 / (1.0 + np.exp(-x))


ACTIVATIONS = {
    "tanh": np.tanh,
    "relu": lambda x: np.maximum(x, 0.0),
    "sigmoid": sigmoid,
    "linear": lambda x: x,
    None: lambda x: x,
}


def layer_norm(z, gain, shift=None, epsilon=1e-3):
    """Ba et al. 2016: (z - mu) / sqrt(sigma^2 + eps) * gain + shift over the last axis."""
    mu = z.mean(axis=-1, keepdims=True)
    sigma2 = ((z - mu) ** 2).mean(axis=-1, keepdims=True)
    out = (z - mu) / np.sqrt(sigma2 + epsilon) * gain
    return out if shift is None else out + shift


def blocks(matrix, count):
    return np.split(matrix, count, axis=-1)


def zone(previous, new, rate):
    return rate * previous + (1.0 - rate) * new


def run_simple_rnn(x, w, config):
    """Elman 1990: h_t = act(x_t W + h_{t-1} U + b)."""
    act = ACTIVATIONS[config["activation"]]
    batch, steps, _ = x.shape
    units = config["units"]
    h = np.zeros((batch, units))
    bias = w.get("bias", 0.0)
    outputs = []
    for t in range(steps):
        h_new = act(x[:, t] @ w["kernel"] + h @ w["recurrent_kernel"] + bias)
        h = zone(h, h_new, config.get("zoneout_hidden", 0.0))
        outputs.append(h)
    return np.stack(outputs, 1), [h]


def run_lstm(x, w, config):
    """Greff et al. 2017 (vanilla LSTM and its variants); Ba et al. 2016 with layer norm."""
    batch, steps, _ = x.shape
    units = config["units"]
    use_i = config["input_gate"]
    cifg = config["coupled_input_forget"]
    use_f = config["forget_gate"] and not cifg
    use_o = config["output_gate"]
    names = [n for n, on in (("i", use_i), ("f", use_f), ("z", True), ("o", use_o)) if on]
    gate_names = [n for n in names if n != "z"]
    g = ACTIVATIONS[config["input_activation"]]
    act = ACTIVATIONS[config["output_activation"]]
    ln = config["layer_norm"]
    eps = config["layer_norm_epsilon"]
    peep = {
        "i": w.get("input_peephole"),
        "f": w.get("forget_peephole"),
        "o": w.get("output_peephole"),
    }
    fgr = config["full_gate_recurrence"]

    h = np.zeros((batch, units))
    c = np.zeros((batch, units))
    prev_gates = {n: np.zeros((batch, units)) for n in gate_names}
    outputs = []
    bias = w["bias"] if "bias" in w else np.zeros(len(names) * units)
    for t in range(steps):
        wx = x[:, t] @ w["kernel"]
        rh = h @ w["recurrent_kernel"]
        if ln:
            wx = layer_norm(wx, w["input_norm_gain"], epsilon=eps)
            rh = layer_norm(rh, w["recurrent_norm_gain"], epsilon=eps)
        pre = dict(zip(names, blocks(wx + rh + bias, len(names))))
        if fgr:
            previous = np.concatenate([prev_gates[n] for n in gate_names], -1)
            extra = dict(zip(gate_names, blocks(previous @ w["gate_recurrent_kernel"], len(gate_names))))
            for n in gate_names:
                pre[n] = pre[n] + extra[n]
        z = g(pre["z"])
        i = sigmoid(pre["i"] + (peep["i"] * c if peep["i"] is not None else 0)) if use_i else 1.0
        if cifg:
            f = 1.0 - i
        elif use_f:
            f = sigmoid(pre["f"] + (peep["f"] * c if peep["f"] is not None else 0))
        else:
            f = 1.0
        c_new = z * i + c * f
        o = sigmoid(pre["o"] + (peep["o"] * c_new if peep["o"] is not None else 0)) if use_o else 1.0
        c_read = layer_norm(c_new, w["cell_norm_gain"], w["cell_norm_shift"], eps) if ln else c_new
        h_new = act(c_read) * o
        gates_now = {"i": i, "f": f, "o": o}
        prev_gates = {n: gates_now[n] * np.ones((batch, units)) for n in gate_names}
        c = zone(c, c_new, config.get("zoneout_cell", 0.0))
        h = zone(h, h_new, config.get("zoneout_hidden", 0.0))
        outputs.append(h)
    states = [h, c]
    if fgr:
        states.append(np.concatenate([prev_gates[n] for n in gate_names], -1))
    return np.stack(outputs, 1), states


def run_gru(x, w, config):
    """Cho et al. 2014 (reset before U_h) or the cuDNN placement (reset after U_h)."""
    batch, steps, _ = x.shape
    units = config["units"]
    reset_after = config["reset_after"]
    ln = config["layer_norm"]
    eps = config["layer_norm_epsilon"]
    w_z, w_r, w_h = blocks(w["kernel"], 3)
    u_z, u_r, u_h = blocks(w["recurrent_kernel"], 3)
    bias = w.get("bias", np.zeros((2, 3 * units) if reset_after else 3 * units))
    if reset_after:
        b_in, b_rec = bias[0], bias[1]
    else:
        b_in, b_rec = bias, np.zeros(3 * units)
    b_z, b_r, b_h = blocks(b_in, 3)
    c_z, c_r, c_h = blocks(b_rec, 3)
    h = np.zeros((batch, units))
    outputs = []
    for t in range(steps):
        xt = x[:, t]
        wx = np.concatenate([xt @ w_z, xt @ w_r, xt @ w_h], -1)
        if ln:
            wx = layer_norm(wx, w["input_norm_gain"], epsilon=eps)
        x_z, x_r, x_h = blocks(wx, 3)
        if reset_after:
            rec = np.concatenate([h @ u_z, h @ u_r, h @ u_h], -1)
            if ln:
                rec = layer_norm(rec, w["recurrent_norm_gain"], epsilon=eps)
            r_z, r_r, r_h = blocks(rec, 3)
            z = sigmoid(x_z + b_z + r_z + c_z)
            r = sigmoid(x_r + b_r + r_r + c_r)
            n = np.tanh(x_h + b_h + r * (r_h + c_h))
        else:
            rec = np.concatenate([h @ u_z, h @ u_r], -1)
            if ln:
                rec = layer_norm(rec, w["recurrent_norm_gain"][: 2 * units], epsilon=eps)
            r_z, r_r = blocks(rec, 2)
            z = sigmoid(x_z + b_z + r_z)
            r = sigmoid(x_r + b_r + r_r)
            rh = (r * h) @ u_h
            if ln:
                rh = layer_norm(rh, w["recurrent_norm_gain"][2 * units :], epsilon=eps)
            n = np.tanh(x_h + b_h + rh)
        h_new = z * h + (1.0 - z) * n
        h = zone(h, h_new, config.get("zoneout_hidden", 0.0))
        outputs.append(h)
    return np.stack(outputs, 1), [h]


def run_mut(x, w, config):
    """Jozefowicz et al. 2015, MUT1/MUT2/MUT3 (section 3.5)."""
    batch, steps, _ = x.shape
    units = config["units"]
    variant = config["variant"]
    b_z, b_r, b_h = blocks(w["bias"], 3)
    k = w["kernel"]
    u = w["recurrent_kernel"]
    if variant == 1:
        w_xz, w_xr = blocks(k, 2)
        w_hr, w_hh = blocks(u, 2)
    elif variant == 2:
        w_xz, w_xh = blocks(k, 2)
        w_hz, w_hr, w_hh = blocks(u, 3)
    else:
        w_xz, w_xr, w_xh = blocks(k, 3)
        w_hz, w_hr, w_hh = blocks(u, 3)
    h = np.zeros((batch, units))
    outputs = []
    for t in range(steps):
        xt = x[:, t]
        if variant == 1:
            z = sigmoid(xt @ w_xz + b_z)
            r = sigmoid(xt @ w_xr + h @ w_hr + b_r)
            h_new = np.tanh((r * h) @ w_hh + np.tanh(xt) + b_h) * z + h * (1 - z)
        elif variant == 2:
            z = sigmoid(xt @ w_xz + h @ w_hz + b_z)
            r = sigmoid(xt + h @ w_hr + b_r)
            h_new = np.tanh((r * h) @ w_hh + xt @ w_xh + b_h) * z + h * (1 - z)
        else:
            z = sigmoid(xt @ w_xz + np.tanh(h) @ w_hz + b_z)
            r = sigmoid(xt @ w_xr + h @ w_hr + b_r)
            h_new = np.tanh((r * h) @ w_hh + xt @ w_xh + b_h) * z + h * (1 - z)
        h = zone(h, h_new, config.get("zoneout_hidden", 0.0))
        outputs.append(h)
    return np.stack(outputs, 1), [h]


def run_reference(cell, x):
    """Dispatches on the cell's class name; weights are read by variable name."""
    weights = {v.name: np.asarray(v.numpy(), dtype=np.float64) for v in cell.weights}
    config = cell.get_config()
    runner = {
        "SimpleRNNCell": run_simple_rnn,
        "LSTMCell": run_lstm,
        "GRUCell": run_gru,
        "MUTCell": run_mut,
    }[type(cell).__name__]
    return runner(np.asarray(x, np.float64), weights, config)


def randomize_weights(cell, seed=0, scale=0.5):
    """Sets every weight of a built cell to N(0, scale^2) values (gains around 1)."""
    rng = np.random.default_rng(seed)
    values = []
    for variable in cell.weights:
        value = rng.normal(0.0, scale, size=tuple(variable.shape))
        if "gain" in variable.name:
            value = value + 1.0
        values.append(value.astype(variable.dtype))
    cell.set_weights(values)
