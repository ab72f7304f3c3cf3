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
    out = {}
    for _ in range(nt):
        n, = r('H'); nm = h[p:p + n].decode(); p += n
        k, rk = r('BB'); sh = r('%dQ' % rk); N = math.prod(sh)
        C = sh[-1] if rk else 1; R = N // C
        if not 0 < n <= 1024 or nm in out or any(ord(c) < 32 or 126 < ord(c) < 160 for c in nm) \
                or rk > 8 or k == rk == 0 or min(sh, default=1) < 1: _f(nm + ' entry')
        if k == 0:
            bt, ly, sd, z, G = r('4BI'); m = 2 ** (bt - 1) - 1
            if not 1 < bt < 9 or ly > 1 or ly and bt > 7 or sd != 1 or z or G > C: _f(nm + ' quant')
            q = g(-(-N * bt // 8) if ly else N)
            if ly:  # LSB-first bt-bit fields
                u = np.unpackbits(np.frombuffer(q, np.uint8), bitorder='little')
                if u[N * bt:].any(): _f(nm + ' padding')
                u = u[:N * bt].reshape(N, bt); v = np.zeros(N, np.uint8)
                for j in range(bt): v |= u[:, j] << j
                q = (v << (8 - bt)).view(np.int8) >> (8 - bt)
            else: q = np.frombuffer(q, np.int8)
            if np.abs(q.astype(np.int16)).max() > m: _f(nm + ' code range')
            G = G or C; ng = -(-C // G); s = _pl(g(2 * R * ng), 2, '<f2')
            if np.signbit(s).any() or not np.isfinite(s).all(): _f(nm + ' scales')
            s = np.repeat(s.astype(np.float32).reshape(R, ng), G, 1)[:, :C]
            w = q.astype(np.float32).reshape(R, C) * s
        elif 0 < k < 4:
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
