/* Plain C reference of wannmag's Heisenberg Metropolis sweep (benchmarks/bench_mc.py compiles it with gcc -O3).
 *
 * Same update as wannmag.magnetism.montecarlo.kernels.metropolis_sweep with isotropic bonds (mode 0):
 * H = sum_{i<j} J_ij S_i.S_j + sum_i S_i.A_i.S_i - z_i.S_i (wannmag convention: each bond once, spins of length
 * S, J > 0 antiferromagnetic, meV); sequential sweep, cone proposal of half-angle theta_max around the old spin,
 * azimuth by Marsaglia's disc method (no trigonometric calls), xoshiro256** random numbers drawn in the same order,
 * so that both produce the same trajectory.
 */
#include <math.h>
#include <stdint.h>

static inline uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }

static inline uint64_t next_u64(uint64_t *s) {
    uint64_t result = rotl(s[1] * 5, 7) * 9;
    uint64_t t = s[1] << 17;
    s[2] ^= s[0];
    s[3] ^= s[1];
    s[1] ^= s[2];
    s[0] ^= s[3];
    s[2] ^= t;
    s[3] = rotl(s[3], 45);
    return result;
}

static inline double next_double(uint64_t *s) { return (double)(next_u64(s) >> 11) * (1.0 / 9007199254740992.0); }

static inline double quad(const double *A, double x, double y, double z) {
    return x * (A[0] * x + A[1] * y + A[2] * z) + y * (A[3] * x + A[4] * y + A[5] * z) +
           z * (A[6] * x + A[7] * y + A[8] * z);
}

long metropolis_sweeps(long n_sweeps, long N, const int64_t *ptr, const int64_t *nbr, const double *Jiso,
                       const double *A, const uint8_t *hasA, const double *zee, const double *slen, double *spins,
                       uint64_t *rng, double beta, double cos_max) {
    long acc = 0;
    for (long sweep = 0; sweep < n_sweeps; sweep++) {
        for (long i = 0; i < N; i++) {
            double hx = 0.0, hy = 0.0, hz = 0.0;
            for (int64_t k = ptr[i]; k < ptr[i + 1]; k++) {
                const double *sj = spins + 3 * nbr[k];
                double J = Jiso[k];
                hx += J * sj[0];
                hy += J * sj[1];
                hz += J * sj[2];
            }
            hx -= zee[3 * i];
            hy -= zee[3 * i + 1];
            hz -= zee[3 * i + 2];
            double S = slen[i];
            double *si = spins + 3 * i;
            double sx = si[0], sy = si[1], sz = si[2];
            double nx = sx / S, ny = sy / S, nz = sz / S;
            double c = 1.0 - next_double(rng) * (1.0 - cos_max);
            double x, y, q;
            for (;;) { /* Marsaglia: (x, y) uniform in the unit disc from one 64-bit number, no trigonometry */
                uint64_t rr = next_u64(rng);
                x = (double)(rr >> 40) * (2.0 / 16777216.0) - 1.0;
                y = (double)((rr >> 16) & 0xFFFFFFu) * (2.0 / 16777216.0) - 1.0;
                q = x * x + y * y;
                if (q <= 1.0 && q > 0.0) break;
            }
            double s = sqrt(fmax(0.0, 1.0 - c * c)) / q;
            double e1x, e1y, e1z, r;
            if (fabs(nz) < 0.9) {
                r = sqrt(nx * nx + ny * ny);
                e1x = -ny / r; e1y = nx / r; e1z = 0.0;
            } else {
                r = sqrt(ny * ny + nz * nz);
                e1x = 0.0; e1y = -nz / r; e1z = ny / r;
            }
            double e2x = ny * e1z - nz * e1y, e2y = nz * e1x - nx * e1z, e2z = nx * e1y - ny * e1x;
            double cp = s * (x * x - y * y), sp = s * (2.0 * x * y);
            double ux = c * nx + cp * e1x + sp * e2x;
            double uy = c * ny + cp * e1y + sp * e2y;
            double uz = c * nz + cp * e1z + sp * e2z;
            double inv = S / sqrt(ux * ux + uy * uy + uz * uz);
            double tx = ux * inv, ty = uy * inv, tz = uz * inv;
            double dE = (tx - sx) * hx + (ty - sy) * hy + (tz - sz) * hz;
            if (hasA[i]) dE += quad(A + 9 * i, tx, ty, tz) - quad(A + 9 * i, sx, sy, sz);
            if (dE <= 0.0 || next_double(rng) < exp(-beta * dE)) {
                si[0] = tx; si[1] = ty; si[2] = tz;
                acc++;
            }
        }
    }
    return acc;
}
