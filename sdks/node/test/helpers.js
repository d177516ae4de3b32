// The local stack the tests run against: `paygate dev` (started by scripts/sdk-tests.sh) and the
// `paygate` binary for accounts and events.
import { execFileSync } from 'node:child_process'

export const BASE = process.env.PAYGATE_API_BASE
export const BIN = process.env.PAYGATE_BIN
if (!BASE || !BIN) throw new Error('Run these tests through `make test` (scripts/sdk-tests.sh sets PAYGATE_API_BASE and PAYGATE_BIN).')

/** A fresh account: {account_id, test_key, live_key}. */
export const newAccount = () => JSON.parse(execFileSync(BIN, ['accounts', 'create']).toString())

/** `paygate trigger`: `count` realistic events of `type`; returns them. */
export const trigger = (key, type, count = 1) =>
  execFileSync(BIN, ['trigger', type, '--api-key', key, '--count', String(count)], { maxBuffer: 64 << 20 })
    .toString().trim().split('\n').map((line) => JSON.parse(line))

/** Waits (bounded, 60 s) until `check()` is truthy. */
export async function eventually (check, what) {
  for (let i = 0; i < 600; i++) {
    const v = await check()
    if (v) return v
    await new Promise((resolve) => setTimeout(resolve, 100))
  }
  throw new Error(`timed out waiting for ${what}`)
}
