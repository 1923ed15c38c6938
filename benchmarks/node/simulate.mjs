// Times @cloud-copilot/iam-simulate over the simulations in a JSON file (see bench_simulate.py); prints
// {"seconds": ..., "decisions": [...]} on stdout. Run from a folder where the package is installed (npm install).
import { readFileSync } from 'node:fs'
import { createRequire } from 'node:module'

const require = createRequire(process.cwd() + '/')
const { runSimulation } = require('@cloud-copilot/iam-simulate')
const simulations = JSON.parse(readFileSync(process.argv[2], 'utf8'))
const decisions = []
const start = process.hrtime.bigint()
for (const simulation of simulations) {
  const result = await runSimulation(simulation, {})
  const analysis = result.resultType === 'single' ? result.result.analysis : undefined
  decisions.push(result.errors ? 'Error' : (analysis ? analysis.result : result.resultType))
}
const seconds = Number(process.hrtime.bigint() - start) / 1e9
process.stdout.write(JSON.stringify({ seconds, decisions }))
