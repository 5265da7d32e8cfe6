#ifndef VPCDNS_CZLIB_SHIM_H
#define VPCDNS_CZLIB_SHIM_H
#include <zlib.h>
#endif
