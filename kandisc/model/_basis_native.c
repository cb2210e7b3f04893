/* Fused CPU kernels for the KAN feature matrix and for a whole layer's numeric part (see
 * kandisc/model/native.py, which loads this library with ctypes and owns its contract, and
 * kandisc/model/fused.py for the layer kernels of _layer_native_impl.h).
 *
 * For every (row b, input i) the forward kernel finds the knot interval of x by binary search,
 * evaluates the k+1 non-zero B-splines (or their derivatives of a given order) from the
 * per-interval polynomial table by Horner's scheme and writes them, with the base function b(x)
 * (or its derivative), into one row of the (B, in, G+k+1) feature matrix. The backward kernel
 * reuses the interval and returns d(features)/dx contracted with the incoming gradient. One pass
 * over the inputs each way, instead of the ~25 tensor passes the same work takes in eager torch.
 *
 * C99 plus GCC/Clang vector extensions, no Python or torch headers, so any C compiler builds it
 * in well under a second; the two element types are instantiated from _basis_native_impl.h and
 * _layer_native_impl.h.
 */
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Threads: the caller passes torch's intra-op thread count; each thread takes a contiguous block
 * of batch rows, and a call only splits when every thread gets at least MIN_WORK (row, input)
 * pairs, since starting a thread costs about as much as 10 000 of them. */
#define MAX_THREADS 64
#define MIN_WORK 32768

static int split_count(int64_t n_batch, int64_t n_in, int64_t n_threads)
{
    int64_t n = n_threads < MAX_THREADS ? n_threads : MAX_THREADS;
    const int64_t by_work = n_batch * n_in / MIN_WORK;
    n = n < by_work ? n : by_work;
    n = n < n_batch ? n : n_batch;
    return n < 1 ? 1 : (int)n;
}

/* Run jobs[1..] on new threads and jobs[0] on this one; a job whose thread cannot start runs here. */
static void run_jobs(void *(*worker)(void *), void *jobs, size_t job_size, int n_jobs)
{
    pthread_t threads[MAX_THREADS];
    int started[MAX_THREADS] = {0};
    for (int t = 1; t < n_jobs; ++t)
        started[t] = pthread_create(&threads[t], NULL, worker, (char *)jobs + t * job_size) == 0;
    worker(jobs);
    for (int t = 1; t < n_jobs; ++t) {
        if (started[t])
            pthread_join(threads[t], NULL);
        else
            worker((char *)jobs + t * job_size);
    }
}

/* Each table record starts with t_idx and 1/h (kandisc/model/basis_layout.py, HEADER); native.py
 * reads this value back (kandisc_basis_row_header) and refuses the library if the two disagree. */
#define ROW_HEADER 2

#define SCALAR float
#define SUFFIX f32
#include "_basis_native_impl.h"
#include "_layer_native_impl.h"
#undef SCALAR
#undef SUFFIX

#define SCALAR double
#define SUFFIX f64
#include "_basis_native_impl.h"
#include "_layer_native_impl.h"

/* setup.py passes a digest of this file and the header: native.py compares it with the sources
 * beside it, so a library built from other sources (a checkout updated without reinstalling) is
 * refused instead of being called with the wrong arguments. */
#ifndef KANDISC_SOURCE_DIGEST
#define KANDISC_SOURCE_DIGEST "unknown"
#endif
const char *kandisc_basis_source_digest(void) { return KANDISC_SOURCE_DIGEST; }

int64_t kandisc_basis_row_header(void) { return ROW_HEADER; }
