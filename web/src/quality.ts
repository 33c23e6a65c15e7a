// Capture quality of a timeline bucket, for the quality line under the timeline:
// good (nothing lost), degraded (under 1% lost or missing bytes), bad, or none
// (no capture status reported for that bucket).

import type { QualityBucket } from './api';

export type Quality = 'good' | 'degraded' | 'bad' | 'none';

export function quality(b: QualityBucket): Quality {
  const lost = (b.dropped || 0) + (b.overflow || 0);
  const seen = (b.captured || 0) + lost;
  if (seen === 0 && !b.gaps && !b.missing_bytes) return 'none';
  if (lost === 0 && !b.gaps && !b.missing_bytes) return 'good';
  if (b.gaps > 0) return 'bad';
  const rate = seen > 0 ? lost / seen : 1;
  return rate < 0.01 ? 'degraded' : 'bad';
}

export function qualityText(b: QualityBucket): string {
  const parts = [`captured ${b.captured}`];
  if (b.dropped) parts.push(`dropped ${b.dropped}`);
  if (b.overflow) parts.push(`overflow ${b.overflow}`);
  if (b.gaps) parts.push(`gaps ${b.gaps}`);
  if (b.missing_bytes) parts.push(`missing ${b.missing_bytes} B`);
  return parts.join(', ');
}
