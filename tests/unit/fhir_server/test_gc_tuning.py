import gc

from fhir_server.gc_tuning import YOUNG_THRESHOLD, tune_garbage_collector


def test_tuning_freezes_the_start_up_heap_and_raises_the_young_threshold() -> None:
    before = gc.get_threshold()
    try:
        tune_garbage_collector()
        assert gc.get_threshold()[0] == YOUNG_THRESHOLD
        assert gc.get_freeze_count() > 0
        frozen = gc.get_freeze_count()
        tune_garbage_collector()  # a second app in the same process freezes nothing more
        assert gc.get_freeze_count() == frozen
    finally:
        gc.set_threshold(*before)
