/* One element type's kernels; included by _basis_native.c with SCALAR and SUFFIX defined.
 *
 * Arguments shared by both kernels:
 *   x       (n_batch, n_in)            layer inputs, row-major
 *   sigma   (n_batch, n_in) or NULL    sigmoid(x), only for base_kind 2 (SiLU = x·sigmoid(x)); the
 *                                      caller computes it with vectorised torch code
 *   grid    (n_in, n_knots)            extended knot vector of each input, increasing
 *   rows    (n_batch, n_in) int32      each x's interval row: written by the forward kernel (when
 *                                      not NULL) and read by the backward one instead of searching
 *   table   (n_in * (n_knots + 1), width)  spline.basis_table transposed: one record per (input,
 *                                      interval row) laid out as kandisc/model/basis_layout.py says
 *                                      ([t_idx, 1/h] then the value coefficients a[p][m], p-major);
 *                                      native.py passes the record width
 *   order   derivative order of the features (0 values, 1 slopes, ...; at most 3 for the base
 *           function); the backward kernel contracts the features of order + 1 with grad_out
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

/* The order-th derivative of the base function at x (order <= 3: basis_layout.MAX_DERIVATIVE).
 * SiLU = x·sigmoid(x) has silu^(n) = x·sigmoid^(n) + n·sigmoid^(n-1), with sigmoid' = s(1-s),
 * sigmoid'' = sigmoid'·(1-2s) and sigmoid''' = sigmoid''·(1-2s) - 2·sigmoid'^2. */
static inline SCALAR FN(base_derivative)(int64_t base_kind, int64_t order, SCALAR x, const SCALAR *sigma, int64_t at)
{
    if (base_kind == 1)
        return order == 0 ? x : (order == 1 ? (SCALAR)1 : (SCALAR)0);
    if (base_kind != 2)
        return (SCALAR)0;
    const SCALAR s = sigma[at];
    if (order == 0)
        return x * s;
    if (order == 1)
        return s * ((SCALAR)1 + x * ((SCALAR)1 - s));
    const SCALAR d1 = s * ((SCALAR)1 - s);
    const SCALAR d2 = d1 * ((SCALAR)1 - (SCALAR)2 * s);
    if (order == 2)
        return (SCALAR)2 * d1 + x * d2;
    return (SCALAR)3 * d2 + x * (d2 * ((SCALAR)1 - (SCALAR)2 * s) - (SCALAR)2 * d1 * d1);
}

/* n·(n-1)···(n-order+1): the factor a derivative of that order puts on s^n (0 once order > n). */
static inline SCALAR FN(falling)(int64_t n, int64_t order)
{
    SCALAR f = 1;
    for (int64_t j = 0; j < order; ++j)
        f *= (SCALAR)(n - j);
    return f;
}

/* 1/h^order: the chain-rule factor of the local coordinate s = (x - t)/h. */
static inline SCALAR FN(inv_h_power)(SCALAR inv_h, int64_t order)
{
    SCALAR f = 1;
    for (int64_t j = 0; j < order; ++j)
        f *= inv_h;
    return f;
}

/* The order-th x-derivative of the k+1 local bases of one record, written as out[m] for m = 0..k:
 * Horner's scheme on the value coefficients `a` (basis_layout.py) scaled by falling factorials. */
static inline void FN(local_poly)(const SCALAR *a, int64_t k, int64_t order, SCALAR s, SCALAR inv_h, SCALAR *out)
{
    const SCALAR scale = FN(inv_h_power)(inv_h, order);
    for (int64_t m = 0; m <= k; ++m) {
        SCALAR v = a[m] * FN(falling)(k, order);
        for (int64_t p = 1; p <= k - order; ++p)
            v = v * s + a[p * (k + 1) + m] * FN(falling)(k - p, order);
        out[m] = v * scale;
    }
}

/* The same for a cubic record whose four bases all lie inside the feature row, on SIMD lanes;
 * with order a literal 0 every factor folds away. */
static inline __attribute__((always_inline)) void FN(cubic_lanes)(const SCALAR *a, const int64_t order, SCALAR s,
                                                                  SCALAR inv_h, VEC *out)
{
    const SCALAR scale = FN(inv_h_power)(inv_h, order);
    for (int h = 0; h < 4; h += LANES) {
        VEC v, c;
        LOAD(v, a + h);
        if (order > 0)
            v *= FN(falling)(3, order);
        for (int64_t p = 1; p <= 3 - order; ++p) {
            LOAD(c, a + 4 * p + h);
            v = order > 0 ? v * s + c * FN(falling)(3 - p, order) : v * s + c;
        }
        out[h / LANES] = order > 0 ? v * scale : v;
    }
}

/* The two kernels' bodies are inlined twice by the workers at the end: once with k = 3 and
 * order = 0 as literals (training's forward and backward: no branches on k, unrolled Horner
 * loops, fewer live registers) and once for any other k or derivative order. */
static inline __attribute__((always_inline)) void FN(forward_body)(
    const SCALAR *restrict x, const SCALAR *restrict sigma, const SCALAR *restrict grid, const SCALAR *restrict table,
    int64_t n_batch, int64_t n_in, int64_t n_knots, const int64_t k, int64_t width, const int64_t order,
    int64_t base_kind, SCALAR *restrict out, int32_t *restrict rows)
{
    const int64_t n_feat = n_knots - k, n_basis = n_knots - 1 - k;
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
            o[0] = FN(base_derivative)(base_kind, order, xv, sigma, at);
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
                VEC v[4 / LANES];
                FN(cubic_lanes)(c + ROW_HEADER, order, s, c[1], v);
                for (int h = 0; h < 4; h += LANES)
                    STORE(o + row - 3 + h, v[h / LANES]);
                continue;
            }
            FN(local_poly)(c + ROW_HEADER, k, order, s, c[1], local);
            for (int64_t m = 0; m <= k; ++m) {
                const int64_t col = row - k + m;
                if (col >= 1 && col <= n_basis) /* phantom bases beyond the extended grid are zero */
                    o[col] = local[m];
            }
        }
    }
}

/* d(features of `order`)/dx contracted with grad_out: the features of order + 1 against it. */
static inline __attribute__((always_inline)) void FN(backward_body)(
    const SCALAR *restrict x, const SCALAR *restrict sigma, const int32_t *restrict rows, const SCALAR *restrict table,
    const SCALAR *restrict grad_out, int64_t n_batch, int64_t n_in, int64_t n_knots, const int64_t k, int64_t width,
    const int64_t order, int64_t base_kind, SCALAR *restrict grad_x)
{
    const int64_t n_feat = n_knots - k, n_basis = n_knots - 1 - k;
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
            SCALAR total = g[0] * FN(base_derivative)(base_kind, order + 1, xv, sigma, at);
            const int64_t row = rows[at];
            if (row != 0 && row != n_knots) {
                const SCALAR *c = table + (i * (n_knots + 1) + row) * width;
                const SCALAR s = (xv - c[0]) * c[1];
                if (k == 3 && row >= 4 && row <= n_basis) {
                    VEC v[4 / LANES], sum = {0}, grad;
                    FN(cubic_lanes)(c + ROW_HEADER, order + 1, s, c[1], v);
                    for (int h = 0; h < 4; h += LANES) {
                        LOAD(grad, g + row - 3 + h);
                        sum += v[h / LANES] * grad;
                    }
                    for (int lane = 0; lane < LANES; ++lane)
                        total += sum[lane];
                } else {
                    FN(local_poly)(c + ROW_HEADER, k, order + 1, s, c[1], local);
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
    int64_t n_batch, n_in, n_knots, k, width, order, base_kind;
} FN(job);

static NO_MEMSET_CALLS void *FN(forward_worker)(void *arg)
{
    const FN(job) *j = arg;
    if (j->k == 3 && j->order == 0)
        FN(forward_body)(j->x, j->sigma, j->grid, j->table, j->n_batch, j->n_in, j->n_knots, 3, j->width, 0,
                         j->base_kind, j->result, j->rows_out);
    else
        FN(forward_body)(j->x, j->sigma, j->grid, j->table, j->n_batch, j->n_in, j->n_knots, j->k, j->width,
                         j->order, j->base_kind, j->result, j->rows_out);
    return NULL;
}

static void *FN(backward_worker)(void *arg)
{
    const FN(job) *j = arg;
    if (j->k == 3 && j->order == 0)
        FN(backward_body)(j->x, j->sigma, j->rows_in, j->table, j->grad_out, j->n_batch, j->n_in, j->n_knots, 3,
                          j->width, 0, j->base_kind, j->result);
    else
        FN(backward_body)(j->x, j->sigma, j->rows_in, j->table, j->grad_out, j->n_batch, j->n_in, j->n_knots, j->k,
                          j->width, j->order, j->base_kind, j->result);
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
                               int64_t n_batch, int64_t n_in, int64_t n_knots, int64_t k, int64_t width,
                               int64_t order, int64_t base_kind, SCALAR *out, int32_t *rows, int64_t n_threads)
{
    const FN(job) whole = {x, sigma, grid, table, NULL, NULL, rows, out, n_batch, n_in, n_knots, k, width, order,
                           base_kind};
    FN(run_split)(FN(forward_worker), &whole, n_threads);
}

void FN(kandisc_basis_backward)(const SCALAR *x, const SCALAR *sigma, const int32_t *rows, const SCALAR *table,
                                const SCALAR *grad_out, int64_t n_batch, int64_t n_in, int64_t n_knots, int64_t k,
                                int64_t width, int64_t order, int64_t base_kind, SCALAR *grad_x, int64_t n_threads)
{
    const FN(job) whole = {x, sigma, NULL, table, grad_out, rows, NULL, grad_x, n_batch, n_in, n_knots, k, width,
                           order, base_kind};
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
