print("not ok 1 - not written yet")
print("1..1")
raise SystemExit(1)
