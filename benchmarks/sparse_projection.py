"""Could a sparse product speed up the input projection of the paper-shape network? (BENCHMARKS.md)

    python benchmarks/sparse_projection.py --threads 2

Input as in ``cellfit.bench`` (64 samples, 1000 Poisson channels with rates uniform in
[0, 200] Hz at DT 0.1 ms, 2048 steps: about 1% ones), weights (128, 1000). Times the
projection forward + weight gradient three ways, median of 5 after one warm-up: the dense
``channel_linear`` the layers use, ``torch.nonzero`` alone (what any sparse path must pay
to find the events in a dense tensor), and ``torch.sparse`` COO and CSR products. The
sparse results are checked against the dense ones (float32 rounding: other summation order).
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

import torch

from cellfit.functional.linear import channel_linear


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--repeats", type=int, default=5)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    warnings.simplefilter("ignore")  # sparse tensors' beta warnings
    gen = torch.Generator().manual_seed(0)
    B, K, T, N = 64, 1000, 2048, 128
    rate = torch.rand(B, K, 1, generator=gen) * 0.02
    x = (torch.rand(B, K, T, generator=gen) < rate).float()
    W = torch.randn(N, K, generator=gen) * 0.03
    g = torch.randn(B, N, T, generator=gen)

    def dense():
        w = W.clone().requires_grad_()
        out = channel_linear(x, w)
        out.backward(g)
        return out, w.grad

    def events(order):
        idx = torch.nonzero(x if order == "bkt" else x.transpose(1, 2))
        return idx

    def sparse_coo():
        idx = events("bkt")
        rows = idx[:, 0] * T + idx[:, 2]
        S = torch.sparse_coo_tensor(torch.stack([rows, idx[:, 1]]), torch.ones(len(idx)), (B * T, K)).coalesce()
        out = torch.sparse.mm(S, W.t()).view(B, T, N).permute(0, 2, 1).contiguous()
        gw = torch.sparse.mm(S.t(), g.permute(0, 2, 1).reshape(B * T, N)).t()
        return out, gw

    def sparse_csr():
        idx = events("btk")  # rows already sorted
        rows = idx[:, 0] * T + idx[:, 1]
        crow = torch.zeros(B * T + 1, dtype=torch.int64)
        crow[1:] = torch.bincount(rows, minlength=B * T).cumsum(0)
        S = torch.sparse_csr_tensor(crow, idx[:, 2], torch.ones(len(idx)), (B * T, K))
        out = (S @ W.t()).view(B, T, N).permute(0, 2, 1).contiguous()
        gw = (S.t() @ g.permute(0, 2, 1).reshape(B * T, N)).t()
        return out, gw

    def timed(f):
        f()
        runs = []
        for _ in range(a.repeats):
            t0 = time.perf_counter()
            f()
            runs.append(time.perf_counter() - t0)
        return statistics.median(runs)

    ref_out, ref_gw = dense()
    print(f"input density {x.mean().item():.4f}, {a.threads} threads, torch {torch.__version__}")
    for name, f in (("coo", sparse_coo), ("csr", sparse_csr)):
        out, gw = f()
        # same sums in another order: float32 rounding of sums of ~10 (forward) and ~1e4 (gradient) terms
        torch.testing.assert_close(out, ref_out, rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(gw, ref_gw, rtol=1e-4, atol=1e-3)
    for name, f in (("dense channel_linear", dense), ("torch.nonzero only", lambda: events("bkt")),
                    ("sparse COO", sparse_coo), ("sparse CSR", sparse_csr)):
        print(f"{name:22s} {timed(f):.3f} s")


if __name__ == "__main__":
    main()
