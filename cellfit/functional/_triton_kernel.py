"""The Triton kernel behind :mod:`cellfit.functional.triton_blocks` (imported only when used).

Kept in its own module because Triton resolves the helpers a kernel calls from the
module's globals, and importing Triton costs time that CPU-only users need not pay.

``EXT`` (a compile-time flag) adds the reset potential and ``JP`` after-spike currents
(:mod:`cellfit.functional.glif`); without it the extension's arguments are not read and
the kernel is the plain ALIF kernel.
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
    vrpow_ptr, amp_ptr, rpow_ptr, c1_ptr, cend_ptr,
    HAS_REC: tl.constexpr, BLOCK: tl.constexpr, EXT: tl.constexpr, JP: tl.constexpr,
):  # fmt: skip
    # EXT: vrpow (N, 2 BLOCK) = V_r beta^e; amp (N, JP) = A_j; rpow (N, JP, BLOCK + 1) = r_j^m;
    # c1 / cend (rows, JP): c_j at the block's first step / at step T - 1
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
    if EXT:
        M = tl.maximum(L, 2)  # the first free step after a spike at s is s + M
        vr_row = vrpow_ptr + n * (2 * BLOCK)
        vr_entry = tl.load(vr_row + M - 2)  # V_r beta^(M-2): the potential before the first free step
        jj = tl.arange(0, JP)
        amp = tl.load(amp_ptr + n * JP + jj)
        r_row = rpow_ptr + n * (JP * (BLOCK + 1)) + jj * (BLOCK + 1)  # (JP,) pointers to r_j^0
        r_t = tl.load(r_row[:, None] + t[None, :])  # (JP, BLOCK) r_j^t
        r_block = tl.load(r_row + L)  # r_j^L
        c1 = tl.load(c1_ptr + row64 * JP + jj)
        c_end = tl.load(cend_ptr + row64 * JP + jj)

    for blk in range(n_start, n_end):
        pos = blk * L + t
        valid = in_block & (pos < T)
        x = tl.load(cur_ptr + row64 * T + pos, mask=valid, other=0.0)
        if HAS_REC:
            x += tl.load(rec_ptr + row64 * L + t, mask=in_block, other=0.0)
        if EXT:
            x += tl.sum((amp * c1)[:, None] * r_t, 0)  # after-spike currents sum_j A_j c_j1 r_j^t
        free = t >= r
        x = tl.where(free, x, zero)
        _, u = tl.associative_scan((a_beta, (1.0 - beta) * x), 0, _affine)
        if EXT:
            # u is 0 on the refractory prefix; after a spike V = u + V_r beta^(t-r+M-1) (also on the prefix)
            e = tl.minimum(tl.maximum(t - r + M - 1, 0), 2 * BLOCK - 1)
            v = u + tl.where(r > 0, tl.load(vr_row + e), bpow * v0)
            above = (v > one + dppow * a1) & valid & free
        else:
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
        if EXT:
            v_since = tl.load(vr_row + tl.maximum(j_last - 1 - k, 0))  # V_r beta^(j-k-1)
            v_end = tl.where(is_last, tl.where(earlier, v_since, v_j), v_end)
            r_j = tl.load(r_row + j_last)
            r_since = tl.load(r_row + tl.maximum(j_last - 1 - k, 0))
            c_end = tl.where(is_last, c1 * r_j + tl.where(earlier, r_since, 0.0), c_end)
        else:
            v_end = tl.where(is_last, tl.where(earlier, 0.0, v_j), v_end)
        a_end = tl.where(is_last, a1 * p_j + tl.where(earlier, p_since, 0.0), a_end)

        # carry to the next block (Propositions 3-5)
        p_after = tl.load(ppow_ptr + n * (BLOCK + 1) + tl.maximum(L - 1 - k, 0))
        a1 = p_block * a1 + tl.where(spiked, p_after, 0.0)
        v_last = tl.sum(tl.where(t == L - 1, v, zero), 0)
        if EXT:
            c1 = r_block * c1 + tl.where(spiked, tl.load(r_row + tl.maximum(L - 1 - k, 0)), 0.0)
            v0 = tl.where(spiked, vr_entry, v_last)  # (T_R = 1: a refractory block ends at V_r = v_last)
        else:
            v0 = tl.where(spiked, 0.0, v_last)
        r = tl.where(spiked, k + extra, 0)

    tl.store(v0_ptr + row, v0)
    tl.store(a1_ptr + row, a1)
    tl.store(r_ptr + row, r)
    tl.store(vend_ptr + row, v_end)
    tl.store(aend_ptr + row, a_end)
    if EXT:
        tl.store(c1_ptr + row64 * JP + jj, c1)
        tl.store(cend_ptr + row64 * JP + jj, c_end)

