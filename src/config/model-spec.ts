import { z } from 'zod';

export const ModelSpec = z
  .object({
    type: z.enum(['logistic', 'mlp'], { error: 'model.type is `logistic` or `mlp`' }),
    hidden: z.array(z.number().int().positive()).default([32, 16]),
    activation: z.enum(['relu', 'tanh']).default('relu'),
  })
  .strict();
export type ModelSpec = z.infer<typeof ModelSpec>;
