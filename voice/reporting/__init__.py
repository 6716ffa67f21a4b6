"""The program's numbers for its council and evaluators: the figures (with the previous period), areas, the
open-data export, and the outcomes sent back to the 911 center.

It sits above the call flow (voice/line) and casework, whose rows it reads, and below the dashboard and the
commands, which show and write what it computes. docs/reports.md says how each figure is computed.
"""
