// result.h: the data path's names for crypto/result.h's Result, Status and
// Error (common/result.h's contract: a value or a reason, `return Error{"why"};`
// on failure). dataplane/ may include only itself and crypto/, so it uses the
// crypto/ copy of the template under its own namespace.
#pragma once

#include "crypto/result.h"

namespace faraday::dataplane {

using crypto::Error;
using crypto::Result;
using crypto::Status;

}  // namespace faraday::dataplane
