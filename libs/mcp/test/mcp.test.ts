import { describe, expect, it } from 'vitest';
import { eventsUri, flowOfUri, flowUri } from '../src/index.js';
import { bounded } from '../src/format.js';

const ID = '01JAAAAAAAAAAAAAAAAAAAAAAA';

describe('the MCP server\'s pieces', () => {
  it('names a flow by its resource URIs, and nothing else', () => {
    expect(flowOfUri(flowUri(ID))).toBe(ID);
    expect(flowOfUri(eventsUri(ID))).toBe(ID);
    for (const uri of ['taskstream://flows/nope', `taskstream://flows/${ID}/other`, `https://flows/${ID}`, 'taskstream://schemas/flow']) expect(flowOfUri(uri)).toBeUndefined();
  });

  it('bounds output to its tail or its head', () => {
    expect(bounded('abcdef', 10, true)).toEqual({ text: 'abcdef', cut: false });
    expect(bounded('abcdef', 2, true)).toEqual({ text: 'ef', cut: true });
    expect(bounded('abcdef', 2, false)).toEqual({ text: 'ab', cut: true });
  });
});
