/** A resource owner of the password grant. */
export interface User {
  username: string;
  passwordHash: string;
  createdAt: Date;
  updatedAt: Date;
}
