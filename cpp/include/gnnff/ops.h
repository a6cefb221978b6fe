// Custom torch operators of gnnff (namespace gnnff::, registered when libgnnff_ops.so loads).
// Exported models may call them; gnnff::Model links the library so that every loader has them.
#pragma once

namespace gnnff {

// the operator set's version (1: trilinear, trilinear_reduce; 2: + outer_index_add,
// gather_matvec, gather_vecmat; 3: + uvu_contract; 4: trilinear's operand and output indexed by
// atoms, b_index / out_index / c_index); calling it also keeps the
// linker from dropping the library that registers the operators
int ops_version();

}    // namespace gnnff
