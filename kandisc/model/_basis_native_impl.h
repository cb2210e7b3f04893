/* One element type's kernels; included by _basis_native.c with SCALAR and SUFFIX defined.
 *
 * Arguments shared by both kernels:
 *   x       (n_batch, n_in)            layer inputs, row-major
 *   sigma   (n_batch, n_in) or NULL    sigmoid(x), only for base_kind 2 (SiLU = x·sigmoid(x)); the
 *                                      caller computes it with vectorised torch code
 *   grid    (n_in, n_knots)            extended knot vector of each input, increasing
 *   rows    (n_batch, n_in) int32      each x's interval row: written by the forward kernel (when
 *                                      not NULL) and read by the backward one instead of searching
 *   table   (n_in * (n_knots + 1), D)  spline.basis_table transposed: one row per (input, interval
 *                                      row) with [t_idx, 1/h, value coefficients a[p][m] (p = k..0,
 *                                      m = 0..k), derivative coefficients (p = k-1..0)],
 *                                      D = 2 + (k+1)(2k+1)
 *   base_kind  0 zero, 1 identity, 2 SiLU
 * The "row" of x for input i is the number of knots <= x; 0 and n_knots mean outside the
 * extended grid, where every basis is zero. On row r the k+1 non-zero bases land in the
 * consecutive feature columns r-k .. r (column 0 holds the base function). A non-finite x gets
 * NaN spline features and a NaN gradient, as on the eager torch path.
 */
#if defined(__GNUC__) && !defined(__clang__)
/* Keep GCC from turning the per-row zeroing into a libc memset call per element. */
#define NO_MEMSET_CALLS __attribute__((optimize("no-tree-loop-distribute-patterns")))
#else
#define NO_MEMSET_CALLS
#endif
#define CAT_(a, b) a##_##b
#define CAT(a, b) CAT_(a, b)
#define FN(name) CAT(name, SUFFIX)
#define VEC FN(vec4)

/* One 16-byte register of SCALAR (4 floats or 2 doubles): the k+1 = 4 bases of a cubic spline
 * are evaluated side by side in one or two of them. GCC/Clang vector extensions map this onto
 * SSE (or NEON) without intrinsics; 16 bytes is what every x86-64 and arm64 CPU has. */
typedef SCALAR VEC __attribute__((vector_size(16)));
#define LANES ((int)(16 / sizeof(SCALAR)))

/* Unaligned vector load/store (memcpy of a constant size compiles to one instruction). */
#define LOAD(dst, src) memcpy(&(dst), (src), sizeof(dst))
#define STORE(dst, src) memcpy((dst), &(src), sizeof(src))

static inline int64_t FN(knot_row)(const SCALAR *knots, int64_t n_knots, SCALAR x)
{
    /* Count of knots <= x by a branch-free binary search (conditional moves, no mispredicted
     * jumps); NaN compares false everywhere and lands outside (row 0). */
    const SCALAR *first = knots;
    int64_t n = n_knots;
    while (n > 1) {
        const int64_t half = n >> 1;
        first = (first[half] <= x) ? first + half : first;
        n -= half;
    }
    return (first - knots) + (*first <= x);
}

static inline SCALAR FN(base_value)(int64_t base_kind, SCALAR x, const SCALAR *sigma, int64_t at)
{
    return base_kind == 2 ? x * sigma[at] : (base_kind == 1 ? x : (SCALAR)0);
}

static inline SCALAR FN(base_slope)(int64_t base_kind, SCALAR x, const SCALAR *sigma, int64_t at)
{
    if (base_kind == 2) {
        const SCALAR s = sigma[at];
        return s * ((SCALAR)1 + x * ((SCALAR)1 - s));
    }
    return base_kind == 1 ? (SCALAR)1 : (SCALAR)0;
}

/* Horner's scheme for the k+1 local bases (or, with `powers` = k, their derivatives) of one row,
 * written as out[m] for m = 0..k. */
static inline void FN(local_poly)(const SCALAR *coef, int64_t k, int64_t powers, SCALAR s, SCALAR *out)
{
    for (int64_t m = 0; m <= k; ++m) {
        SCALAR v = coef[m];
        for (int64_t p = 1; p < powers; ++p)
            v = v * s + coef[p * (k + 1) + m];
        out[m] = v;
    }
}

/* The two kernels' bodies are inlined twice by the exported functions at the end: once with k = 3
 * as a literal (the default order: no branches on k, unrolled Horner loops, fewer live registers)
 * and once for any other k. */
static inline __attribute__((always_inline)) void FN(forward_body)(
    const SCALAR *restrict x, const SCALAR *restrict sigma, const SCALAR *restrict grid, const SCALAR *restrict table,
    int64_t n_batch, int64_t n_in, int64_t n_knots, const int64_t k, int64_t base_kind, SCALAR *restrict out,
    int32_t *restrict rows)
{
    const int64_t n_feat = n_knots - k, n_basis = n_knots - 1 - k, n_coef = k + 1;
    const int64_t width = 2 + n_coef * (2 * k + 1);
    const VEC zero = {0};
    SCALAR local[16]; /* k + 1 values; native.py only calls with k <= 15 */
    for (int64_t b = 0; b < n_batch; ++b) {
        for (int64_t i = 0; i < n_in; ++i) {
            const int64_t at = b * n_in + i;
            const SCALAR xv = x[at];
            SCALAR *o = out + at * n_feat;
            int64_t f = 0;
            for (; f + LANES <= n_feat; f += LANES)
                STORE(o + f, zero);
            for (; f < n_feat; ++f)
                o[f] = 0;
            o[0] = FN(base_value)(base_kind, xv, sigma, at);
            if (!isfinite(xv)) {
                /* NaN or ±inf: NaN spline features, as on the eager path, so a bad value reaches
                 * the output (and the training NaN guard) whatever the base function. */
                for (f = 1; f < n_feat; ++f)
                    o[f] = (SCALAR)NAN;
                if (rows)
                    rows[at] = 0;
                continue;
            }
            const int64_t row = FN(knot_row)(grid + i * n_knots, n_knots, xv);
            if (rows)
                rows[at] = (int32_t)row;
            if (row == 0 || row == n_knots)
                continue;
            const SCALAR *c = table + (i * (n_knots + 1) + row) * width;
            const SCALAR s = (xv - c[0]) * c[1];
            if (k == 3 && row >= 4 && row <= n_basis) {
                /* Cubic, all four bases inside the feature row: Horner on four lanes at once. */
                for (int h = 0; h < 4; h += LANES) {
                    VEC v, a1, a2, a3;
                    LOAD(v, c + 2 + h);
                    LOAD(a1, c + 6 + h);
                    LOAD(a2, c + 10 + h);
                    LOAD(a3, c + 14 + h);
                    v = ((v * s + a1) * s + a2) * s + a3;
                    STORE(o + row - 3 + h, v);
                }
                continue;
            }
            FN(local_poly)(c + 2, k, k + 1, s, local);
            for (int64_t m = 0; m <= k; ++m) {
                const int64_t col = row - k + m;
                if (col >= 1 && col <= n_basis) /* phantom bases beyond the extended grid are zero */
                    o[col] = local[m];
            }
        }
    }
}

static inline __attribute__((always_inline)) void FN(backward_body)(
    const SCALAR *restrict x, const SCALAR *restrict sigma, const int32_t *restrict rows, const SCALAR *restrict table,
    const SCALAR *restrict grad_out, int64_t n_batch, int64_t n_in, int64_t n_knots, const int64_t k,
    int64_t base_kind, SCALAR *restrict grad_x)
{
    const int64_t n_feat = n_knots - k, n_basis = n_knots - 1 - k, n_coef = k + 1;
    const int64_t width = 2 + n_coef * (2 * k + 1);
    SCALAR local[16]; /* k + 1 values; native.py only calls with k <= 15 */
    for (int64_t b = 0; b < n_batch; ++b) {
        for (int64_t i = 0; i < n_in; ++i) {
            const int64_t at = b * n_in + i;
            const SCALAR xv = x[at];
            const SCALAR *g = grad_out + at * n_feat;
            if (!isfinite(xv)) {
                grad_x[at] = (SCALAR)NAN;
                continue;
            }
            SCALAR total = g[0] * FN(base_slope)(base_kind, xv, sigma, at);
            const int64_t row = rows[at];
            if (row != 0 && row != n_knots) {
                const SCALAR *c = table + (i * (n_knots + 1) + row) * width;
                const SCALAR s = (xv - c[0]) * c[1];
                const SCALAR *d = c + 2 + n_coef * n_coef;
                if (k == 3 && row >= 4 && row <= n_basis) {
                    VEC sum = {0};
                    for (int h = 0; h < 4; h += LANES) {
                        VEC v, d1, d2, grad;
                        LOAD(v, d + h);
                        LOAD(d1, d + 4 + h);
                        LOAD(d2, d + 8 + h);
                        LOAD(grad, g + row - 3 + h);
                        sum += ((v * s + d1) * s + d2) * grad;
                    }
                    for (int lane = 0; lane < LANES; ++lane)
                        total += sum[lane];
                } else {
                    FN(local_poly)(d, k, k, s, local);
                    for (int64_t m = 0; m <= k; ++m) {
                        const int64_t col = row - k + m;
                        if (col >= 1 && col <= n_basis)
                            total += g[col] * local[m];
                    }
                }
            }
            grad_x[at] = total;
        }
    }
}

/* One thread's share of a call: the rows [first_row, first_row + n_batch) of the batch, as
 * offset pointers into the caller's arrays. */
typedef struct {
    const SCALAR *x, *sigma, *grid, *table, *grad_out;
    const int32_t *rows_in;
    int32_t *rows_out;
    SCALAR *result; /* features (forward) or grad_x (backward) */
    int64_t n_batch, n_in, n_knots, k, base_kind;
} FN(job);

static NO_MEMSET_CALLS void *FN(forward_worker)(void *arg)
{
    const FN(job) *j = arg;
    if (j->k == 3)
        FN(forward_body)(j->x, j->sigma, j->grid, j->table, j->n_batch, j->n_in, j->n_knots, 3, j->base_kind,
                         j->result, j->rows_out);
    else
        FN(forward_body)(j->x, j->sigma, j->grid, j->table, j->n_batch, j->n_in, j->n_knots, j->k, j->base_kind,
                         j->result, j->rows_out);
    return NULL;
}

static void *FN(backward_worker)(void *arg)
{
    const FN(job) *j = arg;
    if (j->k == 3)
        FN(backward_body)(j->x, j->sigma, j->rows_in, j->table, j->grad_out, j->n_batch, j->n_in, j->n_knots, 3,
                          j->base_kind, j->result);
    else
        FN(backward_body)(j->x, j->sigma, j->rows_in, j->table, j->grad_out, j->n_batch, j->n_in, j->n_knots, j->k,
                          j->base_kind, j->result);
    return NULL;
}

/* Cut the batch into one job per thread (rows are independent) and run them. */
static void FN(run_split)(void *(*worker)(void *), const FN(job) *whole, int64_t n_threads)
{
    FN(job) jobs[MAX_THREADS];
    const int64_t n_feat = whole->n_knots - whole->k;
    const int n_jobs = split_count(whole->n_batch, whole->n_in, n_threads);
    const int64_t chunk = (whole->n_batch + n_jobs - 1) / n_jobs;
    for (int t = 0; t < n_jobs; ++t) {
        const int64_t first = t * chunk, last = first + chunk < whole->n_batch ? first + chunk : whole->n_batch;
        const int64_t at = first * whole->n_in;
        jobs[t] = *whole;
        jobs[t].n_batch = last > first ? last - first : 0;
        jobs[t].x = whole->x + at;
        jobs[t].sigma = whole->sigma ? whole->sigma + at : NULL;
        jobs[t].grad_out = whole->grad_out ? whole->grad_out + at * n_feat : NULL;
        jobs[t].rows_in = whole->rows_in ? whole->rows_in + at : NULL;
        jobs[t].rows_out = whole->rows_out ? whole->rows_out + at : NULL;
        jobs[t].result = whole->result + (whole->grad_out ? at : at * n_feat);
    }
    run_jobs(worker, jobs, sizeof(FN(job)), n_jobs);
}

void FN(kandisc_basis_forward)(const SCALAR *x, const SCALAR *sigma, const SCALAR *grid, const SCALAR *table,
                               int64_t n_batch, int64_t n_in, int64_t n_knots, int64_t k, int64_t base_kind,
                               SCALAR *out, int32_t *rows, int64_t n_threads)
{
    const FN(job) whole = {x, sigma, grid, table, NULL, NULL, rows, out, n_batch, n_in, n_knots, k, base_kind};
    FN(run_split)(FN(forward_worker), &whole, n_threads);
}

void FN(kandisc_basis_backward)(const SCALAR *x, const SCALAR *sigma, const int32_t *rows, const SCALAR *table,
                                const SCALAR *grad_out, int64_t n_batch, int64_t n_in, int64_t n_knots, int64_t k,
                                int64_t base_kind, SCALAR *grad_x, int64_t n_threads)
{
    const FN(job) whole = {x, sigma, NULL, table, grad_out, rows, NULL, grad_x, n_batch, n_in, n_knots, k, base_kind};
    FN(run_split)(FN(backward_worker), &whole, n_threads);
}

#undef VEC
#undef NO_MEMSET_CALLS
#undef LOAD
#undef STORE
#undef LANES
#undef FN
#undef CAT
#undef CAT_
