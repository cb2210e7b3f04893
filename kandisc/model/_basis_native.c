/* Fused CPU kernels for the KAN feature matrix (see kandisc/model/native.py, which loads this
 * library with ctypes and owns its contract).
 *
 * For every (row b, input i) the forward kernel finds the knot interval of x by binary search,
 * evaluates the k+1 non-zero B-splines from the per-interval polynomial table by Horner's scheme
 * and writes them, with the base function b(x), into one row of the (B, in, G+k+1) feature
 * matrix. The backward kernel recomputes the interval and returns d(features)/dx contracted
 * with the incoming gradient. One pass over the inputs each way, instead of the ~25 tensor
 * passes the same work takes in eager torch.
 *
 * C99 plus GCC/Clang vector extensions, no Python or torch headers, so any C compiler builds it
 * in well under a second; the two element types are instantiated from _basis_native_impl.h.
 */
#include <math.h>
#include <stdint.h>
#include <string.h>

#define SCALAR float
#define SUFFIX f32
#include "_basis_native_impl.h"
#undef SCALAR
#undef SUFFIX

#define SCALAR double
#define SUFFIX f64
#include "_basis_native_impl.h"

/* setup.py passes a digest of this file and the header: native.py compares it with the sources
 * beside it, so a library built from other sources (a checkout updated without reinstalling) is
 * refused instead of being called with the wrong arguments. */
#ifndef KANDISC_SOURCE_DIGEST
#define KANDISC_SOURCE_DIGEST "unknown"
#endif
const char *kandisc_basis_source_digest(void) { return KANDISC_SOURCE_DIGEST; }
