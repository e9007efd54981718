import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  InvalidArgumentError,
  MAX_NODE_ID_LENGTH,
  NODE_ID_SEPARATORS,
  isValidNodeId,
  nodeIdProblem,
  validateNodeId,
} from '../../src/index.js';
import { nodeId } from '../../src/testing/fast-check/index.js';
import { fcParams } from '../support/fc.js';
import { expectInvalidArgument } from '../support/errors.js';

describe('node ids', () => {
  it.each([
    'a',
    'node-1',
    'us-east-1/db-3:5432',
    '550e8400-e29b-41d4-a716-446655440000',
    'x'.repeat(64),
    '~!#$%^&*()_+[]{}|;:\'"<>.?/`',
  ])('accepts %j', (id) => {
    expect(isValidNodeId(id)).toBe(true);
    expect(nodeIdProblem(id)).toBeUndefined();
    expect(validateNodeId(id)).toBe(id);
  });

  it.each([
    ['', 'empty'],
    ['x'.repeat(65), 'more than 64'],
    ['a@b', 'separator'],
    ['a,b', 'separator'],
    ['a=b', 'separator'],
    ['a b', 'printable ASCII'],
    ['a\tb', 'printable ASCII'],
    ['a\u007f', 'printable ASCII'],
    ['é', 'printable ASCII'],
    ['\ud800', 'printable ASCII'],
  ])('rejects %j (%s)', (id, why) => {
    expect(isValidNodeId(id)).toBe(false);
    expect(nodeIdProblem(id)).toContain(why);
    expectInvalidArgument(() => validateNodeId(id, 'options.node'), 'options.node');
  });

  it('rejects non-strings', () => {
    for (const v of [undefined, null, 5, {}, ['a']]) {
      expect(isValidNodeId(v)).toBe(false);
      expect(() => validateNodeId(v)).toThrow(InvalidArgumentError);
    }
  });

  it('isValidNodeId and nodeIdProblem agree on any string', () => {
    fc.assert(
      fc.property(
        fc.oneof(
          fc.string({ maxLength: 70 }),
          fc.string({ maxLength: 70, unit: 'binary' }),
          nodeId(),
        ),
        (s) => {
          const valid =
            s.length >= 1 &&
            s.length <= MAX_NODE_ID_LENGTH &&
            [...s].every((ch) => ch >= '!' && ch <= '~' && !NODE_ID_SEPARATORS.includes(ch));
          expect(isValidNodeId(s)).toBe(valid);
          expect(nodeIdProblem(s) === undefined).toBe(valid);
        },
      ),
      fcParams(10_000),
    );
  });
});
