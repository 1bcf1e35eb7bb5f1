/** A resource owner: of the password grant, and of the authorization code flow's login page. */
export interface User extends UserAttributes {
  username: string;
  passwordHash: string;
  createdAt: Date;
  updatedAt: Date;
}

/** What a user is known by, given out as OpenID Connect claims; empty: not given. */
export interface UserAttributes {
  email: string;
  name: string;
  roles: string[];
}
