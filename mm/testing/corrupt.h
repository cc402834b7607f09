// Test-only corruption API: breaks the model's state on purpose so every
// checker can be shown to fire. Never linked into the tool or the fuzzers.
#pragma once
