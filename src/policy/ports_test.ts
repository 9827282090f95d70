import assert from "node:assert/strict";
import { formatPortSet, listPorts, parsePortSet, portInSet, type PortRange } from "./ports.ts";

function ranges(value: unknown): PortRange[] {
  const parsed = parsePortSet(value);
  if ("problem" in parsed) throw new Error(parsed.problem);
  return parsed.ranges;
}

Deno.test("parsePortSet: accepted forms", () => {
  const cases: [unknown, string][] = [
    ["3000-9999", "3000-9999"],
    ["3000,8080,9000-9100", "3000,8080,9000-9100"],
    [" 3000 , 9000 - 9100 ", "3000,9000-9100"],
    [8080, "8080"],
    [[8080, "9000-9100"], "8080,9000-9100"],
    ["*", "1-65535"],
    [[], "none"],
    [[{ first: 1024, last: 65535 }], "1024-65535"],
    ["1-65535", "1-65535"],
  ];
  for (const [value, formatted] of cases) {
    assert.equal(formatPortSet(ranges(value)), formatted, String(value));
  }
});

Deno.test("parsePortSet: refused forms", () => {
  const cases: unknown[] = [
    "0",
    0,
    "65536",
    65536,
    "9-3",
    "a",
    "",
    "1-",
    "1,,2",
    80.5,
    true,
    [true],
    {},
    null,
    [[80]],
  ];
  for (const value of cases) assert.ok("problem" in parsePortSet(value), JSON.stringify(value));
});

Deno.test("portInSet and listPorts", () => {
  const set = ranges("3000-3002,8080,3001");
  assert.equal(portInSet(3000, set), true);
  assert.equal(portInSet(3003, set), false);
  assert.equal(portInSet(8080, set), true);
  assert.deepEqual(listPorts(set), [3000, 3001, 3002, 8080]);
});
