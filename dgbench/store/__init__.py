"""What a results folder holds: its layout, the record schema and reading records, claims on
runs, and the one vocabulary of run states. Reading a folder needs no torch."""
