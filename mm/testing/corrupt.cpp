#include "mm/testing/corrupt.h"
