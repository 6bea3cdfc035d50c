// result_test.cpp: result.h, the one error convention: a value or a reason,
// moves, derived pointers, Status, passing a failure on.
#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <utility>

#include "result.h"

namespace faraday {
namespace {

template <typename Ns>
class ResultTest : public ::testing::Test {};

// The cases are written over a namespace of names so that another Result (a
// component's typed error, as faradayctl's PKI has) can be run through them too.
struct Common {
  template <typename T>
  using Result = faraday::Result<T>;
  using Status = faraday::Status;
  using Error = faraday::Error;
};
using Kinds = ::testing::Types<Common>;
TYPED_TEST_SUITE(ResultTest, Kinds);

struct Base {
  virtual ~Base() = default;
  virtual int id() const { return 1; }
};
struct Derived : Base {
  int id() const override { return 2; }
};

template <typename Ns>
typename Ns::template Result<int> half(int n) {
  if (n % 2 != 0) return typename Ns::Error{std::to_string(n) + " is odd"};
  return n / 2;
}

TYPED_TEST(ResultTest, HoldsAValueOrAReason) {
  auto two = half<TypeParam>(4);
  ASSERT_TRUE(two.ok());
  EXPECT_TRUE(static_cast<bool>(two));
  EXPECT_EQ(*two, 2);
  EXPECT_EQ(two.value(), 2);

  auto odd = half<TypeParam>(3);
  ASSERT_FALSE(odd.ok());
  EXPECT_FALSE(static_cast<bool>(odd));
  EXPECT_EQ(odd.error(), "3 is odd");
  EXPECT_EQ(odd.failure().message, "3 is odd");
}

TYPED_TEST(ResultTest, MovesOutAndConvertsTheValue) {
  typename TypeParam::template Result<std::unique_ptr<Base>> made =
      std::make_unique<Derived>();  // a derived pointer converts, as a return would
  ASSERT_TRUE(made.ok());
  EXPECT_EQ((*made)->id(), 2);
  std::unique_ptr<Base> owned = std::move(*made);
  EXPECT_EQ(owned->id(), 2);

  typename TypeParam::template Result<std::string> text = "literal";
  EXPECT_EQ(text->size(), 7u);
}

TYPED_TEST(ResultTest, StatusIsSuccessOrAReasonAndPassesFailuresOn) {
  typename TypeParam::Status fine;
  EXPECT_TRUE(fine.ok());
  typename TypeParam::Status broken = typename TypeParam::Error{"disk full"};
  ASSERT_FALSE(broken.ok());
  EXPECT_EQ(broken.error(), "disk full");

  auto passed_on = [&]() -> typename TypeParam::template Result<int> {
    if (!broken) return broken.failure();
    return 0;
  }();
  ASSERT_FALSE(passed_on.ok());
  EXPECT_EQ(passed_on.error(), "disk full");
}

// A component with typed reasons (faradayctl's PKI) names its own error.
TEST(Result, CarriesATypedError) {
  struct Refusal {
    int code = 0;
    std::string message;
  };
  Result<int, Refusal> refused = Refusal{2, "bad argument"};
  ASSERT_FALSE(refused.ok());
  EXPECT_EQ(refused.error(), "bad argument");
  EXPECT_EQ(refused.failure().code, 2);
  Result<void, Refusal> done;
  EXPECT_TRUE(done.ok());
}

}  // namespace
}  // namespace faraday
