"""The sending loop's batches: what is waiting goes together, at most a batch at a time."""

from eventlet.queue import LightQueue

from notifications.sending import STOP, next_batch


def handed_over(*items):
    queue = LightQueue()
    for item in items:
        queue.put(item)
    return queue


def test_everything_waiting_goes_in_one_batch_up_to_its_size():
    queue = handed_over("m1", "m2", "m3", "m4", "m5")

    assert next_batch(queue, 3) == (["m1", "m2", "m3"], False)
    assert next_batch(queue, 3) == (["m4", "m5"], False)


def test_a_lane_told_to_stop_delivers_what_it_took_and_then_stops():
    assert next_batch(handed_over("m1", STOP, "m2"), 50) == (["m1"], True)
    assert next_batch(handed_over(STOP), 50) == ([], True)
