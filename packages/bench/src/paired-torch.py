"""The PyTorch side of `graft bench --against-torch` (paired.ts): a long-lived process that
runs training steps of the PyTorch reference (../shared/bench/seed_reference.py) on the
batches graft sends, so both sides time the same batches, warm, minutes apart at most.

The network, its init, the L2 term and the data split are the reference module's own
(imported from the path given); the step is the reference's timed region, line for line
(phase one: contiguous slices of the 9-class set; phase two: gathered rows, base frozen).

Usage: python3 paired-torch.py REFERENCE_PY DATA_DIR --threads 1   (OPENBLAS_NUM_THREADS=1)
Protocol: one JSON object per line each way. After loading it prints
  {"ready": true, "torch": ..., "threads": ..., "train": N, "train9": N9}
then for each request {"phase": 1, "batches": [[start, end], ...]} or
{"phase": 2, "batches": [[row, row, ...], ...]} it prints {"ms": [...], "cpu_ms": [...]}:
each step's wall time and the process CPU time it took.
"""
import argparse, importlib.util, json, os, sys, time

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument('reference'); ap.add_argument('data'); ap.add_argument('--threads', type=int, default=1)
    ap.add_argument('--seed', type=int, default=0)
    a = ap.parse_args()
    spec = importlib.util.spec_from_file_location('seed_reference', a.reference)
    ref = importlib.util.module_from_spec(spec); spec.loader.exec_module(ref)
    torch, np, F = ref.torch, ref.np, ref.F
    torch.set_num_threads(a.threads); torch.manual_seed(a.seed)

    # The reference's data preparation (TF input_data split, 9-class filter).
    tr_x = ref.read_idx(os.path.join(a.data, 'train-images-idx3-ubyte')); tr_y = ref.read_idx(os.path.join(a.data, 'train-labels-idx1-ubyte'))
    f = lambda x: torch.from_numpy(x.astype(np.float32) / 255.0).unsqueeze(1)
    g = lambda y: torch.from_numpy(y.astype(np.int64))
    tr_x, tr_y = f(tr_x[5000:]), g(tr_y[5000:])
    keep = tr_y != 9
    tr9_x, tr9_y = tr_x[keep], tr_y[keep]

    net = ref.Net(); l2 = ref.l2
    p1 = [net.W_conv, net.b_conv, net.W_fc1, net.b_fc1, net.W_fc2, net.b_fc2]
    opt1 = torch.optim.Adam(p1, lr=1e-4, eps=1e-8)
    opt2 = torch.optim.Adam([net.W_fc2_10, net.b_fc2_10], lr=1e-4)
    print(json.dumps({'ready': True, 'torch': torch.__version__, 'threads': torch.get_num_threads(),
                      'train': int(tr_x.shape[0]), 'train9': int(tr9_x.shape[0])}), flush=True)

    for line in sys.stdin:
        if not line.strip():
            continue
        req = json.loads(line)
        times = []; cpu = []
        if req['phase'] == 1:
            for p in p1: p.requires_grad_(True)
            for s, e in req['batches']:
                t = time.perf_counter(); c = time.process_time()
                logits = net.features(tr9_x[s:e], 0.7) @ net.W_fc2 + net.b_fc2
                loss = F.cross_entropy(logits, tr9_y[s:e], reduction='sum') + 100 * 0.001 * torch.stack([l2(net.W_conv), l2(net.W_fc1), l2(net.W_fc2)]).mean()
                opt1.zero_grad(); loss.backward(); opt1.step()
                times.append(1000 * (time.perf_counter() - t)); cpu.append(1000 * (time.process_time() - c))
        elif req['phase'] == 2:
            for p in p1: p.requires_grad_(False)
            rows = [torch.tensor(r, dtype=torch.int64) for r in req['batches']]
            for idx in rows:
                t = time.perf_counter(); c = time.process_time()
                logits = net.features(tr_x[idx], 0.7) @ net.W_fc2_10 + net.b_fc2_10
                loss = F.cross_entropy(logits, tr_y[idx], reduction='sum') + 100 * 0.001 * l2(net.W_fc2_10)
                opt2.zero_grad(); loss.backward(); opt2.step()
                times.append(1000 * (time.perf_counter() - t)); cpu.append(1000 * (time.process_time() - c))
        else:
            print(json.dumps({'error': f"unknown phase {req['phase']!r}"}), flush=True)
            continue
        print(json.dumps({'ms': times, 'cpu_ms': cpu}), flush=True)

if __name__ == '__main__':
    main()
