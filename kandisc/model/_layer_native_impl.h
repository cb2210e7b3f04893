/* One element type's kernels for the numeric part of a whole KAN layer; included by
 * _basis_native.c right after _basis_native_impl.h with SCALAR and SUFFIX defined (it uses that
 * header's knot_row, base_derivative and local_poly). kandisc/model/fused.py owns the contract.
 *
 * The layer's numeric output is out[b,o] = Σ_i φ[b,i,o] with the edge values
 *     φ[b,i,o] = W[i,0,o]·b(x[b,i]) + Σ_c W[i,c,o]·B_c(x[b,i])
 * and the effective weights W[i,0,o] = scale_base·mask, W[i,c,o] = coef[i,c-1,o]·scale_sp·mask.
 * Only k+1 of the G+k bases are non-zero at any x, so each (row, input) pair costs k+2 rows of
 * W instead of the dense (B, in, G+k+1) feature matrix and its GEMM, and nothing of that size
 * is ever written. With `spread`, the forward also returns each edge's standard deviation over
 * the batch, std[i,o] = sqrt(var_b(φ[b,i,o]) + 1e-30) (Bessel's correction, none for one row),
 * and keeps the centred φ for the backward (the KAN sparsity penalty's input).
 *
 * Arrays (row-major):
 *   x, sigma          (n_batch, n_in)     inputs; sigmoid(x) for the SiLU base, else NULL
 *   coef              (n_in, n_basis, n_out) with n_basis = n_knots - 1 - k
 *   scale_base, scale_sp, mask            (n_in, n_out)
 *   weights           (n_in, n_feat, n_out) with n_feat = n_basis + 1: written by the forward
 *   record            (n_batch, n_in, 2·(k+2)) or NULL: [b, B_0..B_k, b', B'_0..B'_k] at x
 *                     (slopes only with `slopes`), phantom and out-of-grid bases as 0
 *   first             (n_batch, n_in) int32 or NULL: the feature column of B_0 (row - k)
 *                     With `reuse` the forward reads record and first (made by an earlier call
 *                     on the same x and grid) instead of evaluating the bases again.
 *   phi               (n_batch, n_in, n_out) or NULL: the centred edge values (with spread)
 *   in_mean, in_std   (n_in): with spread, each input's mean and standard deviation over the batch
 * A non-finite x gives NaN values (and NaN gradients), as the feature kernel does.
 */
#define CAT_(a, b) a##_##b
#define CAT(a, b) CAT_(a, b)
#define FN(name) CAT(name, SUFFIX)

#define RECORD(k) (2 * ((k) + 2))

static inline int64_t FN(clamp_col)(int64_t col, int64_t n_basis)
{
    return col < 1 ? 1 : (col > n_basis ? n_basis : col);
}

/* The record of one (row, input) pair: base function and local bases, and their slopes. */
static inline __attribute__((always_inline)) int64_t FN(local_record)(
    const SCALAR *restrict grid, const SCALAR *restrict table, const SCALAR *restrict sigma, SCALAR xv, int64_t at,
    int64_t i, int64_t n_knots, const int64_t k, int64_t width, int64_t base_kind, int slopes, SCALAR *restrict value,
    SCALAR *restrict slope)
{
    const int64_t n_basis = n_knots - 1 - k;
    if (!isfinite(xv)) {
        for (int64_t m = 0; m <= k + 1; ++m)
            value[m] = slope[m] = (SCALAR)NAN;
        return 1;
    }
    value[0] = FN(base_derivative)(base_kind, 0, xv, sigma, at);
    slope[0] = slopes ? FN(base_derivative)(base_kind, 1, xv, sigma, at) : (SCALAR)0;
    const int64_t row = FN(knot_row)(grid + i * n_knots, n_knots, xv);
    if (row == 0 || row == n_knots) {
        for (int64_t m = 1; m <= k + 1; ++m)
            value[m] = slope[m] = 0;
        return 1;
    }
    const SCALAR *c = table + (i * (n_knots + 1) + row) * width;
    const SCALAR s = (xv - c[0]) * c[1];
    FN(local_poly)(c + ROW_HEADER, k, 0, s, c[1], value + 1);
    if (slopes)
        FN(local_poly)(c + ROW_HEADER, k, 1, s, c[1], slope + 1);
    else
        for (int64_t m = 1; m <= k + 1; ++m)
            slope[m] = 0;
    const int64_t first = row - k;
    for (int64_t m = 0; m <= k; ++m) {
        if (first + m < 1 || first + m > n_basis) /* phantom bases beyond the extended grid are zero */
            value[1 + m] = slope[1 + m] = 0;
    }
    return first;
}

static inline __attribute__((always_inline)) void FN(layer_forward_body)(
    const SCALAR *restrict x, const SCALAR *restrict sigma, const SCALAR *restrict grid, const SCALAR *restrict table,
    const SCALAR *restrict weights, int64_t n_batch, int64_t n_in, int64_t n_out, int64_t n_knots, const int64_t k,
    int64_t width, int64_t base_kind, int slopes, SCALAR *out, SCALAR *phi, SCALAR *restrict record,
    int32_t *restrict first_col, const int reuse)
{
    const int64_t n_basis = n_knots - 1 - k, n_feat = n_basis + 1;
    SCALAR value[17], slope[17]; /* base + k + 1 bases; fused.py only calls with k <= 15 */
    for (int64_t b = 0; b < n_batch; ++b) {
        SCALAR *o = out + b * n_out; /* not restrict: the edge values may accumulate here directly */
        for (int64_t j = 0; j < n_out; ++j)
            o[j] = 0;
        for (int64_t i = 0; i < n_in; ++i) {
            const int64_t at = b * n_in + i;
            if (reuse) { /* the record of these same inputs, kept from an earlier call */
                const SCALAR *r = record + at * RECORD(k);
                for (int64_t m = 0; m <= k + 1; ++m)
                    value[m] = r[m];
            }
            const int64_t first = reuse ? first_col[at]
                                        : FN(local_record)(grid, table, sigma, x[at], at, i, n_knots, k, width,
                                                           base_kind, slopes, value, slope);
            if (record && !reuse) {
                SCALAR *r = record + at * RECORD(k);
                for (int64_t m = 0; m <= k + 1; ++m) {
                    r[m] = value[m];
                    r[k + 2 + m] = slope[m];
                }
            }
            if (first_col && !reuse)
                first_col[at] = (int32_t)first;
            /* The edge values go into this (row, input)'s phi row when the spread is wanted
             * (then into the output), else straight into the output row. */
            const SCALAR *restrict w = weights + i * n_feat * n_out;
            SCALAR *edge = phi ? phi + at * n_out : o;
            for (int64_t j = 0; j < n_out; ++j)
                edge[j] = (phi ? (SCALAR)0 : edge[j]) + value[0] * w[j];
            for (int64_t m = 0; m <= k; ++m) {
                const SCALAR *restrict wc = w + FN(clamp_col)(first + m, n_basis) * n_out;
                const SCALAR v = value[1 + m];
                for (int64_t j = 0; j < n_out; ++j)
                    edge[j] += v * wc[j];
            }
            if (phi)
                for (int64_t j = 0; j < n_out; ++j)
                    o[j] += edge[j];
        }
    }
}

/* Accumulates the weights' gradient into grad_w and writes grad_x (when not NULL) for its rows;
 * grad_phi is scratch of n_out entries. */
static inline __attribute__((always_inline)) void FN(layer_backward_body)(
    const SCALAR *restrict record, const int32_t *restrict first_col, const SCALAR *restrict weights,
    const SCALAR *restrict grad_out, const SCALAR *restrict phi, const SCALAR *restrict spread, int64_t n_batch,
    int64_t n_in, int64_t n_out, int64_t n_knots, const int64_t k, SCALAR *restrict grad_w, SCALAR *restrict grad_x,
    SCALAR *restrict grad_phi, const int want_x)
{
    const int64_t n_basis = n_knots - 1 - k, n_feat = n_basis + 1;
    for (int64_t b = 0; b < n_batch; ++b) {
        const SCALAR *restrict g = grad_out + b * n_out;
        for (int64_t i = 0; i < n_in; ++i) {
            const int64_t at = b * n_in + i;
            const SCALAR *restrict r = record + at * RECORD(k);
            const int64_t first = first_col[at];
            const SCALAR *restrict gp = g;
            if (phi) { /* the spread's share: d std / d φ = centred φ / (std · (n - 1)) */
                const SCALAR *restrict p = phi + at * n_out, *restrict sp = spread + i * n_out;
                for (int64_t j = 0; j < n_out; ++j)
                    grad_phi[j] = g[j] + p[j] * sp[j];
                gp = grad_phi;
            }
            const SCALAR *restrict w = weights + i * n_feat * n_out;
            SCALAR *restrict gw = grad_w + i * n_feat * n_out;
            if (!want_x) {
                for (int64_t j = 0; j < n_out; ++j)
                    gw[j] += r[0] * gp[j];
                for (int64_t m = 0; m <= k; ++m) {
                    const int64_t col = FN(clamp_col)(first + m, n_basis) * n_out;
                    const SCALAR v = r[1 + m];
                    for (int64_t j = 0; j < n_out; ++j)
                        gw[col + j] += v * gp[j];
                }
                continue;
            }
            /* dφ/dx = W[i,0]·b' + Σ_m W[i,col_m]·B'_m, contracted with the edges' gradient */
            SCALAR total = 0;
            for (int64_t j = 0; j < n_out; ++j) {
                gw[j] += r[0] * gp[j];
                total += gp[j] * w[j];
            }
            total *= r[k + 2];
            for (int64_t m = 0; m <= k; ++m) {
                const int64_t col = FN(clamp_col)(first + m, n_basis) * n_out;
                const SCALAR v = r[1 + m], d = r[k + 3 + m];
                SCALAR dot = 0;
                for (int64_t j = 0; j < n_out; ++j) {
                    gw[col + j] += v * gp[j];
                    dot += gp[j] * w[col + j];
                }
                total += d * dot;
            }
            grad_x[at] = total;
        }
    }
}

typedef struct {
    const SCALAR *x, *sigma, *grid, *table, *weights, *grad_out, *phi, *spread;
    SCALAR *out, *phi_out, *record, *grad_w, *grad_x, *scratch;
    int32_t *first_out;
    const SCALAR *record_in;
    const int32_t *first_in;
    int64_t n_batch, n_in, n_out, n_knots, k, width, base_kind, slopes, reuse;
} FN(layer_job);

static void *FN(layer_forward_worker)(void *arg)
{
    const FN(layer_job) *j = arg;
#define FORWARD(k_, reuse_)                                                                                            \
    FN(layer_forward_body)(j->x, j->sigma, j->grid, j->table, j->weights, j->n_batch, j->n_in, j->n_out, j->n_knots,  \
                           k_, j->width, j->base_kind, (int)j->slopes, j->out, j->phi_out, j->record, j->first_out,   \
                           reuse_)
    if (j->k == 3 && j->reuse)
        FORWARD(3, 1);
    else if (j->k == 3)
        FORWARD(3, 0);
    else
        FORWARD(j->k, (int)j->reuse);
#undef FORWARD
    return NULL;
}

static void *FN(layer_backward_worker)(void *arg)
{
    /* k = 3 and the input gradient's presence as literals: the common cases without branches */
    const FN(layer_job) *j = arg;
#define BACKWARD(k_, want_x_)                                                                                          \
    FN(layer_backward_body)(j->record_in, j->first_in, j->weights, j->grad_out, j->phi, j->spread, j->n_batch,       \
                            j->n_in, j->n_out, j->n_knots, k_, j->grad_w, j->grad_x, j->scratch, want_x_)
    if (j->k == 3 && j->grad_x)
        BACKWARD(3, 1);
    else if (j->k == 3)
        BACKWARD(3, 0);
    else if (j->grad_x)
        BACKWARD(j->k, 1);
    else
        BACKWARD(j->k, 0);
#undef BACKWARD
    return NULL;
}

/* Rows [first, last) of job t of n_jobs over the batch. */
static void FN(layer_rows)(int64_t n_batch, int n_jobs, int t, int64_t *first, int64_t *count)
{
    const int64_t chunk = (n_batch + n_jobs - 1) / n_jobs;
    const int64_t lo = t * chunk, hi = lo + chunk < n_batch ? lo + chunk : n_batch;
    *first = lo;
    *count = hi > lo ? hi - lo : 0;
}

/* Returns 0, or -1 when a scratch buffer could not be allocated (nothing was computed). */
int FN(kandisc_layer_forward)(const SCALAR *x, const SCALAR *sigma, const SCALAR *grid, const SCALAR *table,
                              const SCALAR *coef, const SCALAR *scale_base, const SCALAR *scale_sp,
                              const SCALAR *mask, int64_t n_batch, int64_t n_in, int64_t n_out, int64_t n_knots,
                              int64_t k, int64_t width, int64_t base_kind, int64_t slopes, int64_t reuse,
                              SCALAR *weights,
                              SCALAR *out, SCALAR *phi, SCALAR *std, SCALAR *in_mean, SCALAR *in_std,
                              SCALAR *record, int32_t *first_col, int64_t n_threads)
{
    const int64_t n_basis = n_knots - 1 - k, n_feat = n_basis + 1;
    for (int64_t i = 0; i < n_in; ++i) {
        for (int64_t j = 0; j < n_out; ++j) {
            const int64_t io = i * n_out + j;
            weights[i * n_feat * n_out + j] = scale_base[io] * mask[io];
            const SCALAR s = scale_sp[io] * mask[io];
            for (int64_t c = 0; c < n_basis; ++c)
                weights[(i * n_feat + 1 + c) * n_out + j] = coef[(i * n_basis + c) * n_out + j] * s;
        }
    }
    FN(layer_job) jobs[MAX_THREADS];
    const int n_jobs = split_count(n_batch, n_in * (n_out > 4 ? n_out / 4 : 1), n_threads);
    for (int t = 0; t < n_jobs; ++t) {
        int64_t first, count;
        FN(layer_rows)(n_batch, n_jobs, t, &first, &count);
        const int64_t at = first * n_in;
        const FN(layer_job) job = {
            .x = x + at, .sigma = sigma ? sigma + at : NULL, .grid = grid, .table = table, .weights = weights,
            .out = out + first * n_out, .phi_out = phi ? phi + at * n_out : NULL,
            .record = record ? record + at * RECORD(k) : NULL, .first_out = first_col ? first_col + at : NULL,
            .n_batch = count, .n_in = n_in, .n_out = n_out, .n_knots = n_knots, .k = k, .width = width,
            .base_kind = base_kind, .slopes = slopes, .reuse = reuse,
        };
        jobs[t] = job;
    }
    run_jobs(FN(layer_forward_worker), jobs, sizeof(FN(layer_job)), n_jobs);
    if (!phi)
        return 0;
    /* Spread: mean, then centre in place and sum the squares (two passes, no cancellation). */
    const int64_t n_edges = n_in * n_out;
    for (int64_t e = 0; e < n_edges; ++e)
        std[e] = 0;
    for (int64_t b = 0; b < n_batch; ++b)
        for (int64_t e = 0; e < n_edges; ++e)
            std[e] += phi[b * n_edges + e];
    const SCALAR inv_n = n_batch > 0 ? (SCALAR)1 / (SCALAR)n_batch : (SCALAR)0;
    for (int64_t e = 0; e < n_edges; ++e)
        std[e] *= inv_n; /* the mean, for now */
    SCALAR *mean = std;
    SCALAR var_stack[256];
    SCALAR *var = n_edges <= 256 ? var_stack : malloc((size_t)n_edges * sizeof(SCALAR));
    if (!var)
        return -1;
    for (int64_t e = 0; e < n_edges; ++e)
        var[e] = 0;
    for (int64_t b = 0; b < n_batch; ++b) {
        SCALAR *p = phi + b * n_edges;
        for (int64_t e = 0; e < n_edges; ++e) {
            p[e] -= mean[e];
            var[e] += p[e] * p[e];
        }
    }
    const SCALAR inv_div = (SCALAR)1 / (SCALAR)(n_batch > 1 ? n_batch - 1 : 1);
    for (int64_t e = 0; e < n_edges; ++e)
        std[e] = (SCALAR)sqrt((double)(var[e] * inv_div) + 1e-30);
    if (var != var_stack)
        free(var);
    /* The inputs' spread (no floor: the penalty divides by std + 0.1), in double. */
    for (int64_t i = 0; i < n_in; ++i) {
        double sum = 0, squares = 0;
        for (int64_t b = 0; b < n_batch; ++b)
            sum += (double)x[b * n_in + i];
        const double mean = n_batch > 0 ? sum / (double)n_batch : 0.0;
        for (int64_t b = 0; b < n_batch; ++b) {
            const double d = (double)x[b * n_in + i] - mean;
            squares += d * d;
        }
        in_mean[i] = (SCALAR)mean;
        in_std[i] = (SCALAR)sqrt(squares / (double)(n_batch > 1 ? n_batch - 1 : 1));
    }
    return 0;
}

/* grad_std and std (n_in, n_out) are NULL when the edges' spread has no gradient, grad_in_std
 * (with x, in_mean and in_std) when the inputs' spread has none. grad_x NULL: no input gradient
 * (the record's slopes are then unused). Returns 0, or -1 when scratch memory could not be
 * allocated (nothing was written). */
int FN(kandisc_layer_backward)(const SCALAR *record, const int32_t *first_col, const SCALAR *weights,
                               const SCALAR *coef, const SCALAR *scale_sp, const SCALAR *mask,
                               const SCALAR *grad_out, const SCALAR *phi, const SCALAR *std, const SCALAR *grad_std,
                               const SCALAR *x, const SCALAR *in_mean, const SCALAR *in_std,
                               const SCALAR *grad_in_std, int64_t n_batch, int64_t n_in, int64_t n_out,
                               int64_t n_knots, int64_t k, SCALAR *grad_x, SCALAR *grad_coef,
                               SCALAR *grad_scale_base, SCALAR *grad_scale_sp, int64_t n_threads)
{
    const int64_t n_basis = n_knots - 1 - k, n_feat = n_basis + 1, n_edges = n_in * n_out;
    const int64_t n_w = n_in * n_feat * n_out;
    const int with_spread = phi && std && grad_std;
    const int n_jobs = split_count(n_batch, n_in * (n_out > 4 ? n_out / 4 : 1), n_threads);
    /* One block: spread coefficients, then per job its scratch row and its share of grad_w. */
    const size_t n_scratch = (size_t)n_edges + (size_t)n_jobs * (size_t)(n_out + n_w);
    SCALAR *block = calloc(n_scratch, sizeof(SCALAR));
    if (!block)
        return -1;
    SCALAR *spread = block;
    if (with_spread) {
        const SCALAR div = (SCALAR)(n_batch > 1 ? n_batch - 1 : 1);
        for (int64_t e = 0; e < n_edges; ++e)
            spread[e] = grad_std[e] / (std[e] * div);
    }
    FN(layer_job) jobs[MAX_THREADS];
    for (int t = 0; t < n_jobs; ++t) {
        int64_t first, count;
        FN(layer_rows)(n_batch, n_jobs, t, &first, &count);
        const int64_t at = first * n_in;
        SCALAR *own = block + n_edges + (size_t)t * (size_t)(n_out + n_w);
        const FN(layer_job) job = {
            .weights = weights, .grad_out = grad_out + first * n_out,
            .phi = with_spread ? phi + at * n_out : NULL, .spread = spread,
            .grad_w = own + n_out, .grad_x = grad_x ? grad_x + at : NULL, .scratch = own,
            .record_in = record + at * RECORD(k), .first_in = first_col + at,
            .n_batch = count, .n_in = n_in, .n_out = n_out, .n_knots = n_knots, .k = k,
        };
        jobs[t] = job;
    }
    run_jobs(FN(layer_backward_worker), jobs, sizeof(FN(layer_job)), n_jobs);
    SCALAR *grad_w = jobs[0].grad_w;
    for (int t = 1; t < n_jobs; ++t)
        for (int64_t e = 0; e < n_w; ++e)
            grad_w[e] += jobs[t].grad_w[e];
    if (grad_x && grad_in_std) { /* d std(x_i) / d x[b,i] = (x - mean) / (std · (n - 1)); 0 at std 0 */
        const SCALAR div = (SCALAR)(n_batch > 1 ? n_batch - 1 : 1);
        for (int64_t i = 0; i < n_in; ++i) {
            const SCALAR c = in_std[i] > 0 ? grad_in_std[i] / (in_std[i] * div) : (SCALAR)0;
            for (int64_t b = 0; b < n_batch; ++b)
                grad_x[b * n_in + i] += c * (x[b * n_in + i] - in_mean[i]);
        }
    }
    /* Chain rule through W = [scale_base·mask, coef·scale_sp·mask]. */
    for (int64_t i = 0; i < n_in; ++i) {
        for (int64_t j = 0; j < n_out; ++j) {
            const int64_t io = i * n_out + j;
            grad_scale_base[io] = grad_w[i * n_feat * n_out + j] * mask[io];
            const SCALAR s = scale_sp[io] * mask[io];
            SCALAR g_sp = 0;
            for (int64_t c = 0; c < n_basis; ++c) {
                const SCALAR gw = grad_w[(i * n_feat + 1 + c) * n_out + j];
                grad_coef[(i * n_basis + c) * n_out + j] = gw * s;
                g_sp += gw * coef[(i * n_basis + c) * n_out + j];
            }
            grad_scale_sp[io] = g_sp * mask[io];
        }
    }
    free(block);
    return 0;
}

/* The KAN sparsity penalty of one layer and its gradients, in double whatever SCALAR is:
 * v = edge_std / (input_std + 0.1) (n_in, n_out); total = l1·Σv + ent·(H_out + H_in), where H_out
 * is the mean over outputs of the entropy (in bits, -Σ p·log2(p + 1e-4)) of v over inputs
 * normalised by (Σ + 1), and H_in the same over outputs per input. grad_edge (n_in, n_out) and
 * grad_input (n_in) receive d total / d edge_std and d total / d input_std. Returns -1 (nothing
 * written) when scratch memory could not be allocated, else 0. */
int FN(kandisc_scale_penalty)(const SCALAR *edge_std, const SCALAR *input_std, int64_t n_in, int64_t n_out,
                              double lamb_l1, double lamb_entropy, double *total, SCALAR *grad_edge,
                              SCALAR *grad_input)
{
    const double eps = 1e-4, ln2 = 0.69314718055994530942;
    /* per output o (normalised over inputs): inverse sum, Σ slope·p; per input i likewise */
    double *block = calloc((size_t)(3 * (n_in + n_out)) + (size_t)(n_in * n_out), sizeof(double));
    if (!block)
        return -1;
    double *inv_out = block, *dot_out = inv_out + n_out, *inv_in = dot_out + n_out, *dot_in = inv_in + n_in;
    double *inv_scale = dot_in + n_in, *v = inv_scale + n_in;
    double sum = 0;
    for (int64_t i = 0; i < n_in; ++i) {
        inv_scale[i] = 1.0 / ((double)input_std[i] + 0.1);
        for (int64_t o = 0; o < n_out; ++o) {
            const double value = (double)edge_std[i * n_out + o] * inv_scale[i];
            v[i * n_out + o] = value;
            sum += value;
            inv_out[o] += value;
            inv_in[i] += value;
        }
    }
    for (int64_t o = 0; o < n_out; ++o)
        inv_out[o] = 1.0 / (inv_out[o] + 1.0);
    for (int64_t i = 0; i < n_in; ++i)
        inv_in[i] = 1.0 / (inv_in[i] + 1.0);
    double entropy_out = 0, entropy_in = 0;
    for (int64_t i = 0; i < n_in; ++i) {
        for (int64_t o = 0; o < n_out; ++o) {
            const double value = v[i * n_out + o], p_out = value * inv_out[o], p_in = value * inv_in[i];
            const double log_out = log2(p_out + eps), log_in = log2(p_in + eps);
            entropy_out -= p_out * log_out;
            entropy_in -= p_in * log_in;
            /* d/dp of p·log2(p + eps) */
            dot_out[o] += (log_out + p_out / ((p_out + eps) * ln2)) * p_out;
            dot_in[i] += (log_in + p_in / ((p_in + eps) * ln2)) * p_in;
        }
    }
    const int use_entropy = lamb_entropy != 0;
    *total = lamb_l1 * sum + (use_entropy ? lamb_entropy * (entropy_out / (double)n_out + entropy_in / (double)n_in) : 0.0);
    for (int64_t i = 0; i < n_in; ++i) {
        double g_input = 0;
        for (int64_t o = 0; o < n_out; ++o) {
            const double value = v[i * n_out + o];
            double g = lamb_l1;
            if (use_entropy) {
                const double p_out = value * inv_out[o], p_in = value * inv_in[i];
                const double slope_out = log2(p_out + eps) + p_out / ((p_out + eps) * ln2);
                const double slope_in = log2(p_in + eps) + p_in / ((p_in + eps) * ln2);
                g -= lamb_entropy / (double)n_out * inv_out[o] * (slope_out - dot_out[o]);
                g -= lamb_entropy / (double)n_in * inv_in[i] * (slope_in - dot_in[i]);
            }
            grad_edge[i * n_out + o] = (SCALAR)(g * inv_scale[i]);
            g_input -= g * value * inv_scale[i];
        }
        grad_input[i] = (SCALAR)g_input;
    }
    free(block);
    return 0;
}

#undef RECORD
#undef FN
#undef CAT
#undef CAT_
