// stdbool must come first: ldns/common.h otherwise #defines bool as signed char and every
// `bool` in the API would import into Swift as Int8 (see shared/design/libldns-from-swift.md).
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <ldns/ldns.h>
#include <ldns/sha2.h>
