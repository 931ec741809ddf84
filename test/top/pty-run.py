#!/usr/bin/env python3
"""Run a command in a pseudo-terminal of COLS x ROWS, for tests of terminal programs.

Usage: pty-run.py COLS ROWS -- COMMAND [ARG...]

The command's terminal output is copied to our stdout byte for byte (escape
sequences included); our stdin is copied to its terminal (key presses). Exits
with the command's exit status (128 + N when killed by signal N).
Only the Python standard library (pty, termios), no native dependency.
"""
import fcntl
import os
import pty
import select
import struct
import sys
import termios


def main() -> int:
    if len(sys.argv) < 5 or sys.argv[3] != "--":
        sys.stderr.write(__doc__)
        return 2
    cols, rows, command = int(sys.argv[1]), int(sys.argv[2]), sys.argv[4:]
    pid, master = pty.fork()
    if pid == 0:
        # The child's stdin is the terminal: size it before the program asks.
        fcntl.ioctl(0, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
        os.execvp(command[0], command)
    stdin_open = True
    while True:
        watched = [master] + ([0] if stdin_open else [])
        ready, _, _ = select.select(watched, [], [])
        if master in ready:
            try:
                data = os.read(master, 65536)
            except OSError:  # EIO: the terminal closed with the program
                data = b""
            if not data:
                break
            os.write(1, data)
        if 0 in ready:
            keys = os.read(0, 1024)
            if keys:
                os.write(master, keys)
            else:
                stdin_open = False
    _, status = os.waitpid(pid, 0)
    code = os.waitstatus_to_exitcode(status)
    return 128 - code if code < 0 else code


if __name__ == "__main__":
    sys.exit(main())
