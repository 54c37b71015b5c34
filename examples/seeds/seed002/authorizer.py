import json
import urllib.request
import jwt
import os
from jwt.algorithms import RSAAlgorithm

def lambda_handler(event, context):
    token = event['authorizationToken']
    methodArn = event['methodArn']
    
    # Cognito user pool IDs
    user_pool_ids = [
        "us-east-1_examplePool1",  # Replace with your first user pool ID
        "us-east-1_examplePool2"   # Replace with your second user pool ID
    ]
    
    # Validate token against each user pool
    for user_pool_id in user_pool_ids:
        try:
            keys_url = f'https://cognito-idp.{os.getenv("AWS_REGION")}.amazonaws.com/{user_pool_id}/.well-known/jwks.json'
            response = urllib.request.urlopen(keys_url)
            keys = json.loads(response.read())['keys']
            
            # Extract the public key
            header = jwt.get_unverified_header(token)
            key = next(k for k in keys if k['kid'] == header['kid'])
            public_key = RSAAlgorithm.from_jwk(json.dumps(key))
            
            # Decode and validate the token
            decoded_token = jwt.decode(token, public_key, algorithms=['RS256'], audience=user_pool_id)
            
            # If valid, return the policy
            return generate_policy(decoded_token['sub'], 'Allow', methodArn)
        
        except Exception as e:
            print(f"Error: {e}")
            continue  # Try the next user pool
    
    # If token is not valid for any user pool, return deny policy
    return generate_policy('user', 'Deny', methodArn)


def generate_policy(principal_id, effect, resource):
    policy_document = {
        'Version': '2012-10-17',
        'Statement': [{
            'Action': 'execute-api:Invoke',
            'Effect': effect,
            'Resource': resource
        }]
    }
    return {
        'principalId': principal_id,
        'policyDocument': policy_document
    }
