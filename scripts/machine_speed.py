"""Prints how fast this machine runs a fixed piece of Python, so that make
test's time can be read against the machine it ran on: about the same work
took 29 minutes from a fresh clone on a machine that runs this in 0.45 s,
and over 60 on slower ones (README, "Measured")."""

import time


def loop():
    return sum(i * i for i in range(10**7))


def main():
    walls, cpus = [], []
    for _ in range(3):
        wall, cpu = time.monotonic(), time.process_time()
        loop()
        walls.append(time.monotonic() - wall)
        cpus.append(time.process_time() - cpu)
    print("berth: machine speed: the reference loop took %.2f s (%.2f CPU-s), best of 3" % (min(walls), min(cpus)))


if __name__ == "__main__":
    main()
