"""Whether a call releases the GIL, told without timing anything.

With a switch interval far longer than the call, a thread waiting for the GIL gets it only
when the holder releases it. A ticking thread that waits 1 ms (GIL released) between ticks
can therefore tick during the call only if the call releases the GIL.
"""

import sys
import threading


def ticks_during(call):
    """`(ticks, result)`: how often the ticking thread ticked while `call()` ran (0 when
    the call held the GIL throughout), and what it returned."""
    stop, ticks = threading.Event(), [0]

    def tick():
        while not stop.wait(0.001):
            ticks[0] += 1

    interval = sys.getswitchinterval()
    sys.setswitchinterval(100.0)
    ticker = threading.Thread(target=tick)
    try:
        ticker.start()
        before = ticks[0]
        result = call()
        return ticks[0] - before, result
    finally:
        stop.set()
        ticker.join()
        sys.setswitchinterval(interval)
