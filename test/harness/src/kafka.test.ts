import { describe, expect, it } from 'vitest';
import { kafkaClusterId } from './kafka.ts';

describe('kafkaClusterId', () => {
  it('never starts with "-" (the storage tool would read it as an option) and encodes 16 bytes', () => {
    // Without the redraw, 1 in 64 ids starts with "-": 5,000 draws all but surely include some.
    for (let index = 0; index < 5_000; index += 1) {
      const id = kafkaClusterId();
      expect(id.startsWith('-')).toBe(false);
      expect(Buffer.from(id, 'base64url')).toHaveLength(16);
    }
  });
});
