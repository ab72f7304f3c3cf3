"""pgq v1 reference decoder (spec/FORMAT.md): load(path|bytes) -> {name: f32 array}
CLI: python3 pgq_decode.py IN.pgq OUT.npz"""
import math, struct, sys, zlib
import numpy as np

def _f(m):
    raise ValueError('pgq: ' + m)

def _pl(b, w, t):  # byte planes -> dtype t
    return np.frombuffer(b, np.uint8).reshape(w, -1).T.copy().view(t).ravel()

def _rans(s, n):  # FORMAT.md 5.5, vectorised over lanes
    P, K, T, ns = struct.unpack_from('<BHHI', s); o = 9; M = 1 << P; L = 65536; F = []; t = []; z = 0; u = b''
    if not (0 < P < 17 and K and 0 < T < 257 and ns): _f('rans')
    for _ in range(T):
        m = np.unpackbits(np.frombuffer(s, np.uint8, 32, o), bitorder='little') > 0; c = m.sum(); o += 32
        f = np.zeros(256, np.int64); f[m] = np.frombuffer(s, '<u2', c, o); f[m] += 1; o += 2 * c; F += [f]
        if not c or f.sum() != M: _f('rans table')
    for _ in range(ns):
        l, c = struct.unpack_from('<QI', s, o); m = np.frombuffer(s, np.uint8, c, o + 12); o += 12 + c; z += l
        if not 0 < c <= l or m.max() >= T or z > n: _f('rans segment')
        t += [np.tile(m.astype(np.int32), -(-l // c))[:l]]; u += m.tobytes()
    x = np.frombuffer(s, '<u4', K, o).astype(np.int64); W = s[o + 4 * K:]
    if z != n or len(set(u)) < T or (x < L).any() or len(W) % 2: _f('rans')
    F = np.ravel(F); E = np.repeat((F << 32) - np.cumsum(F) + F, F) + np.arange(T * M)
    Y = np.repeat(np.tile(np.arange(256, dtype=np.uint8), T), F); t = np.concatenate(t) * M
    W = np.frombuffer(W, '<u2').astype(np.int64); d = np.empty(n, np.uint8); w = 0
    for a in range(0, n, K):
        y = x[:n - a]; i = t[a:a + K] + (y & (M - 1)); r = E[i]; y >>= P; y *= r >> 32; y += r & 0xFFFFFFFF
        j = y < L; c = np.count_nonzero(j)
        if w + c > len(W): _f('rans')
        y[j] = y[j] << 16 | W[w:w + c]; w += c; d[a:a + K] = Y[i]
    if w < len(W) or (x != L).any(): _f('rans')
    return d

def _fma(x, y, z):  # f32 fused multiply-add, exact (6.8): x*y exact in f64, TwoSum error breaks ties
    p = x.astype(np.float64) * y; s = p + z; t = s - p; e = (p - (s - t)) + (z - t); r = s.astype(np.float32)
    d = s - r; n = np.nextafter(r, np.where(d > 0, np.inf, -np.inf).astype(np.float32))
    return np.where((d != 0) & (2 * d == n - r.astype(np.float64)) & (e * d > 0), n, r)

def load(src):
    b = bytes(src) if isinstance(src, (bytes, bytearray, memoryview)) else open(src, 'rb').read()
    if b[:8] != b'\x89PGQ\r\n\x1a\n': _f('bad magic')
    mj, _, hl = struct.unpack_from('<HHI', b, 8)
    if mj != 1: _f('major version %d' % mj)
    e = 16 + hl; h = b[:e]
    if b[e:e + 4] != struct.pack('<I', zlib.crc32(h)): _f('header crc')
    p = 16

    def r(f):
        nonlocal p
        v = struct.unpack_from('<' + f, h, p); p += struct.calcsize('<' + f); return v
    ns, nt, nm = r('3I'); S = []; o = e + 4
    for i in range(ns):
        c, z, crc, a, sl, dl = r('B3sIQQQ'); s = b[a:a + sl]
        if a != o or z != bytes(3) or len(s) != sl: _f('section %d layout' % i)
        o += sl
        if c == 0: d = s
        elif c == 1:  # 1 frame; no skippable, dictionary, reserved bit; window <= 2^27
            import zstandard as Z; P = Z.get_frame_parameters(s)
            if s[:4] != b'(\xb5/\xfd' or s[4] & 11 or P.window_size > 1 << 27 or P.content_size not in (dl, 2**64 - 1):
                _f('section %d zstd frame' % i)
            d = Z.ZstdDecompressor().decompress(s, max_output_size=dl, allow_extra_data=False)
        elif c == 2:
            import brotli; d = brotli.decompress(s)
        elif c == 3: d = _rans(s, dl).tobytes()
        else: _f('section %d codec' % i)
        if len(d) != dl or zlib.crc32(d) != crc: _f('section %d size/crc' % i)
        S.append(d)
    if o != len(b): _f('trailing bytes')
    y = b''
    for i in range(nm):  # metadata: key order, UTF-8
        k, = r('H'); x = h[p:p + k]; p += k; t, = r('B'); x.decode()
        if not x or x <= y: _f('metadata[%d].key' % i)
        if t in (4, 5): k, = r('I'); t > 4 or h[p:p + k].decode(); p += k
        elif t in (1, 2, 3): p += 8
        else: _f('metadata[%d].type' % i)
        y = x
    T = []

    def g(n):  # region bytes, length checked
        x, a, l = r('IQQ'); T.append((x, a, l))
        if l != n or a + l > len(S[x]): _f(nm + ' region')
        return S[x][a:a + l]

    def cd(n, bt, ly, lo):  # n codes (6.3) >= lo, as f32
        q = g(-(-n * bt // 8) if ly else n)
        if ly:  # LSB-first bt-bit fields
            u = np.unpackbits(np.frombuffer(q, np.uint8), bitorder='little')
            if u[n * bt:].any(): _f(nm + ' padding')
            u = u[:n * bt].reshape(n, bt); v = np.zeros(n, np.uint8)
            for j in range(bt): v |= u[:, j] << j
            q = (v << (8 - bt)).view(np.int8) >> (8 - bt)
        else: q = np.frombuffer(q, np.int8)
        if not lo <= int(q.min()) <= int(q.max()) < 2 ** (bt - 1): _f(nm + ' code range')
        return q.astype(np.float32)

    def sc(n):  # n f16 scales
        s = _pl(g(2 * n), 2, '<f2')
        if np.signbit(s).any() or not np.isfinite(s).all(): _f(nm + ' scales')
        return s.astype(np.float32)

    def fa(n):  # a dequantized factor of n elements (4.8)
        bt, ly, sd, z, G = r('4BI')
        if not 1 < bt < 9 or ly > 1 or ly and bt > 7 or sd != 1 or z > 1 or not 0 < G <= n or n % G:
            _f(nm + ' factor')
        return cd(n, bt, ly, 1 - z - 2 ** (bt - 1)) * np.repeat(sc(n // G), G)
    out = {}
    for _ in range(nt):
        n, = r('H'); nm = h[p:p + n].decode(); p += n
        k, rk = r('BB'); sh = r('%dQ' % rk); N = math.prod(sh)
        C = sh[-1] if rk else 1; R = N // C
        if not 0 < n <= 1024 or nm in out or any(ord(c) < 32 or 126 < ord(c) < 160 for c in nm) \
                or rk > 8 or k in (0, 4) and not rk or min(sh, default=1) < 1: _f(nm + ' entry')
        if k in (0, 4):
            bt, ly, sd, z, G = r('4BI')
            if not 1 < bt < 9 or ly > 1 or ly and bt > 7 or sd != 1 or z or G > C: _f(nm + ' quant')
            q = cd(N, bt, ly, 1 - 2 ** (bt - 1)); G = G or C; ng = -(-C // G)
            w = q.reshape(R, C) * np.repeat(sc(R * ng).reshape(R, ng), G, 1)[:, :C]
            if k == 4:  # 6.8: W = Q*s + A*B in f32: a0*b0, then fma over k in order
                L, = r('I')
                if not 0 < L <= min(256, R, C): _f(nm + ' lr_rank')
                a = fa(R * L).reshape(R, L); b = fa(L * C).reshape(L, C); x = a[:, :1] * b[:1]
                for j in range(1, L): x = _fma(a[:, j:j + 1], b[j:j + 1], x)
                w = w + x
        elif k < 4:
            wd = 4 if k == 3 else 2; v = _pl(g(N * wd), wd, '<f4' if k == 3 else '<u2')
            w = v if k == 3 else v.view('<f2').astype(np.float32) if k == 1 else (v.astype('<u4') << 16).view('<f4')
            if not np.isfinite(w).all(): _f(nm + ' value')
        else: _f(nm + ' kind')
        out[nm] = w.reshape(sh)
    if p != e: _f('header_len')
    T.sort(); q = [0] * ns  # regions tile sections
    for x, a, l in T:
        if a != q[x]: _f('section %d tiling' % x)
        q[x] += l
    if 0 in q or q != [len(d) for d in S]: _f('tiling')
    return out

if __name__ == '__main__':
    np.savez(sys.argv[2], **load(sys.argv[1]))
