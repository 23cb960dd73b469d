"""The per-address limit of unauthenticated requests, as parallel requests meet it."""

from lob_common.http import UnauthenticatedLimiter

ADDRESS = "203.0.113.9"


def limiter_with(tokens_used: int, burst: int = 3) -> UnauthenticatedLimiter:
    limiter = UnauthenticatedLimiter(burst=burst, per_second=0.0001)  # no refill in a test
    for _ in range(tokens_used):
        limiter.count(ADDRESS)
    return limiter


def test_requests_in_flight_at_once_share_the_allowance_instead_of_each_using_it():
    limiter = limiter_with(tokens_used=1)  # 2 of 3 left

    admitted = [limiter.admit(ADDRESS) for _ in range(5)]  # five in flight before any answer

    assert [wait == 0 for wait, _ in admitted] == [True, True, False, False, False]
    assert all(wait > 0 for wait, _ in admitted[2:])


def test_a_request_that_was_not_refused_as_unauthenticated_gets_its_token_back():
    limiter = limiter_with(tokens_used=2)  # 1 of 3 left
    wait, reserved = limiter.admit(ADDRESS)
    assert (wait, reserved) == (0.0, True)

    limiter.settle(ADDRESS, reserved, unauthenticated=False)  # it had a valid key

    assert limiter.admit(ADDRESS) == (0.0, True)
    limiter.settle(ADDRESS, True, unauthenticated=True)
    assert limiter.admit(ADDRESS)[0] > 0


def test_an_address_without_401s_is_never_limited_nor_tracked():
    limiter = UnauthenticatedLimiter(burst=1, per_second=0.0001)
    for _ in range(10):
        assert limiter.admit("198.51.100.7") == (0.0, False)
        limiter.settle("198.51.100.7", False, unauthenticated=False)
    assert limiter.retry_after("198.51.100.7") == 0.0
