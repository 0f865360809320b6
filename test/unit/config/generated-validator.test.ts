/**
 * The config's schema validator is generated at build time
 * (scripts/config-validator.js): in a fresh Node process, judging a config
 * loads ajv's small run-time helpers only, never its compiler, and the
 * generated validator says what a validator compiled from the schema now says.
 */
import assert from 'node:assert/strict';
import * as path from 'path';
import { inFreshNode } from '../../helpers/fresh-node';

const AJV_LOADED = "Object.keys(require.cache).filter((k) => k.includes('/node_modules/ajv/')).map((k) => k.split('/node_modules/ajv/dist/').pop())";
const GENERATOR = path.resolve(__dirname, '../../../../scripts/config-validator.js');
const BAD = '{ name: "x", overlay_key: 5, nodes: [{ name: "Bad Name" }], extra_field: 1 }';

describe('config: the generated schema validator', () => {
  it('judges a config without loading ajv, apart from its run-time helpers', () => {
    const r = inFreshNode(`
      const { validateConfig } = require('./shared/config/validate');
      const { problems } = validateConfig(${BAD});
      console.log(JSON.stringify({ problems, loaded: ${AJV_LOADED} }));
    `);
    assert.ok((r.problems as string[]).length >= 2, String(r.problems));
    const loaded = r.loaded as string[];
    assert.ok(loaded.length > 0 && loaded.every((f) => f.startsWith('runtime/')), `ajv modules loaded: ${loaded.join(' ')}`);
  });

  it('gives the same verdict and errors as a validator compiled from the schema now', () => {
    const r = inFreshNode(`
      const Ajv = require('ajv').default;
      const { OPTIONS, SCHEMA } = require(${JSON.stringify(GENERATOR)});
      const fresh = new Ajv(OPTIONS).compile(JSON.parse(require('fs').readFileSync(SCHEMA, 'utf8')));
      const generated = require('./shared/config/config-validator');
      const cases = [${BAD}, { name: 'x' }, {}, { nodes: 'no' }];
      const strip = (errs) => (errs || []).map((e) => [e.instancePath, e.keyword, JSON.stringify(e.params)]);
      const out = cases.map((c) => [fresh(c), generated(c), strip(fresh.errors), strip(generated.errors)]);
      console.log(JSON.stringify({ out, compiler: ${AJV_LOADED}.some((f) => f.startsWith('compile/')) }));
    `);
    assert.equal(r.compiler, true, 'the comparison compiled the schema with ajv');
    for (const [i, [freshOk, genOk, freshErrs, genErrs]] of (r.out as [boolean, boolean, unknown, unknown][]).entries()) {
      assert.equal(genOk, freshOk, `case ${i}: verdict`);
      assert.deepEqual(genErrs, freshErrs, `case ${i}: errors`);
    }
  });
});
