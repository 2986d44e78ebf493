"""The Triton kernel behind :mod:`cellfit.functional.triton_blocks` (imported only when used).

Kept in its own module because Triton resolves the helpers a kernel calls from the
module's globals, and importing Triton costs time that CPU-only users need not pay.
"""

import triton
import triton.language as tl


@triton.jit
def _affine(a1, b1, a2, b2):
    # compose x -> a1 x + b1, then x -> a2 x + b2
    return a1 * a2, a2 * b1 + b2


@triton.jit
def block_kernel(
    cur_ptr, rec_ptr, out_ptr,
    beta_ptr, bpow_ptr, dppow_ptr, ppow_ptr,
    v0_ptr, a1_ptr, r_ptr, vend_ptr, aend_ptr,
    T, L, N, n_start, n_end, last_block, j_last, extra, out_stride,
    HAS_REC: tl.constexpr, BLOCK: tl.constexpr,
):  # fmt: skip
    row = tl.program_id(0)
    n = row % N
    row64 = row.to(tl.int64)
    t = tl.arange(0, BLOCK)
    in_block = t < L

    beta = tl.load(beta_ptr + n)
    bpow = tl.load(bpow_ptr + n * BLOCK + t)  # beta^(t+1)
    dppow = tl.load(dppow_ptr + n * BLOCK + t)  # d p^t
    p_block = tl.load(ppow_ptr + n * (BLOCK + 1) + L)  # p^L
    a_beta = tl.zeros([BLOCK], dtype=bpow.dtype) + beta
    one = tl.full([BLOCK], 1.0, dtype=bpow.dtype)
    zero = tl.zeros([BLOCK], dtype=bpow.dtype)

    v0 = tl.load(v0_ptr + row)
    a1 = tl.load(a1_ptr + row)
    r = tl.load(r_ptr + row)
    v_end = tl.load(vend_ptr + row)
    a_end = tl.load(aend_ptr + row)

    for blk in range(n_start, n_end):
        pos = blk * L + t
        valid = in_block & (pos < T)
        x = tl.load(cur_ptr + row64 * T + pos, mask=valid, other=0.0)
        if HAS_REC:
            x += tl.load(rec_ptr + row64 * L + t, mask=in_block, other=0.0)
        free = t >= r
        x = tl.where(free, x, zero)
        _, u = tl.associative_scan((a_beta, (1.0 - beta) * x), 0, _affine)
        v = tl.where(free, u + bpow * v0, zero)  # v0 is 0 after a spike, i.e. whenever r > 0
        above = (v > one + dppow * a1) & valid
        k = tl.argmax(above.to(tl.int32), 0)
        spiked = tl.max(above.to(tl.int32), 0) > 0
        s = tl.where((t == k) & spiked, one, zero)
        tl.store(out_ptr + row64 * out_stride + blk * L + t, s, mask=in_block)

        # state at step T - 1 (only the last block's values are kept)
        earlier = spiked & (k < j_last)
        v_j = tl.sum(tl.where(t == j_last, v, zero), 0)
        p_j = tl.load(ppow_ptr + n * (BLOCK + 1) + j_last)
        p_since = tl.load(ppow_ptr + n * (BLOCK + 1) + tl.maximum(j_last - 1 - k, 0))
        is_last = blk == last_block
        v_end = tl.where(is_last, tl.where(earlier, 0.0, v_j), v_end)
        a_end = tl.where(is_last, a1 * p_j + tl.where(earlier, p_since, 0.0), a_end)

        # carry to the next block (Propositions 3-5)
        p_after = tl.load(ppow_ptr + n * (BLOCK + 1) + tl.maximum(L - 1 - k, 0))
        a1 = p_block * a1 + tl.where(spiked, p_after, 0.0)
        v_last = tl.sum(tl.where(t == L - 1, v, zero), 0)
        v0 = tl.where(spiked, 0.0, v_last)
        r = tl.where(spiked, k + extra, 0)

    tl.store(v0_ptr + row, v0)
    tl.store(a1_ptr + row, a1)
    tl.store(r_ptr + row, r)
    tl.store(vend_ptr + row, v_end)
    tl.store(aend_ptr + row, a_end)

