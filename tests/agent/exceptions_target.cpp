// C++ exceptions through functions with return probes: probed() throws for odd numbers; outer() catches
// below itself (its own return probe must still fire), rethrows() catches and throws again.
#include <cstdio>
#include <stdexcept>

extern "C" __attribute__((noinline)) int probed(int x) {
  if (x % 2) throw std::runtime_error("odd");
  return x;
}
extern "C" __attribute__((noinline)) int outer(int x) {
  try {
    return probed(x);
  } catch (const std::exception&) {
    return -1;
  }
}
extern "C" __attribute__((noinline)) int rethrows(int x) {
  try {
    return probed(x);
  } catch (...) {
    throw;
  }
}

int main() {
  int sum = 0, caught = 0;
  for (int i = 0; i < 10; i++) sum += outer(i);
  for (int i = 0; i < 10; i++) {
    try {
      sum += rethrows(i);
    } catch (const std::exception&) {
      caught++;
    }
  }
  std::printf("sum %d caught %d\n", sum, caught);
  return 0;
}
