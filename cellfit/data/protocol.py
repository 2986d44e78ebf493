"""Constants of the Allen Cell Types noise protocol (paper section 4.3).

Each "Noise 1" (training) and "Noise 2" (held-out test) sweep carries three
pink-noise epochs at three amplitudes; times are seconds from the start of
the sweep (sample 0 of the NWB time series).
"""

__all__ = [
    "TRAIN_STIMULUS",
    "TEST_STIMULUS",
    "EPOCH_STARTS_S",
    "EPOCH_LENGTH_S",
    "PAPER_WINDOW_S",
    "DT_MIN_MS",
    "DT_MAX_MS",
    "MIN_TEST_REPEATS",
]

#: stimulus_name of the training sweeps in ephys_sweeps.json
TRAIN_STIMULUS = "Noise 1"
#: stimulus_name of the held-out test sweeps
TEST_STIMULUS = "Noise 2"
#: start of the three noise epochs within a sweep, seconds
EPOCH_STARTS_S = (2.0, 10.0, 18.0)
#: length of each noise epoch, seconds
EPOCH_LENGTH_S = 3.0
#: window per epoch used by the reference implementation (first 1 s)
PAPER_WINDOW_S = 1.0
#: supported bin widths, ms
DT_MIN_MS = 0.05
DT_MAX_MS = 4.0
#: the test score needs repeat-to-repeat reliability, so at least two repeats
MIN_TEST_REPEATS = 2
