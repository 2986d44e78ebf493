"""What this test run's stack has: AllenSDK (the pinned stack) and/or ipfx (current stacks).

``.ci/run`` runs the suite on both: the pinned AllenSDK stack (with ipfx added without its
dependencies, so that the two spike detectors are compared on the same sweeps) and a
current numpy 2 stack with ipfx and no AllenSDK. Tests that need a package skip with the
reason and the install command.
"""

import importlib.util

import pytest

HAS_ALLENSDK = importlib.util.find_spec("allensdk") is not None
HAS_IPFX = importlib.util.find_spec("ipfx") is not None

needs_allensdk = pytest.mark.skipif(
    not HAS_ALLENSDK, reason="needs AllenSDK (pinned stack: pip install 'cellfit[allen]', Python 3.11, numpy < 1.24)")
needs_ipfx = pytest.mark.skipif(not HAS_IPFX, reason="needs ipfx (pip install 'cellfit[ipfx]')")
needs_both = pytest.mark.skipif(
    not (HAS_ALLENSDK and HAS_IPFX),
    reason="needs AllenSDK and ipfx together (the pinned stack of .ci/run, which adds ipfx without its dependencies)")

#: the cache readers this stack can run (the files reader always)
READERS = ["files"] + (["allensdk"] if HAS_ALLENSDK else [])
